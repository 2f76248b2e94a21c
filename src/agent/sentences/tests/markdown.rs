//! Paragraphs, lines, list items and the markdown that is not read aloud.

use super::*;

#[test]
fn a_blank_line_ends_a_paragraph() {
    check(
        "First paragraph without a stop\n\nSecond one\r\n\r\nThird\n  \nFourth",
        &[
            "First paragraph without a stop",
            "Second one",
            "Third",
            "Fourth",
        ],
    );
    check("Done.   \nNext", &["Done.", "Next"]);
}

#[test]
fn a_single_newline_is_a_space() {
    check(
        "Dear Anna\nthanks for calling",
        &["Dear Anna thanks for calling"],
    );
}

#[test]
fn a_list_item_ends_the_line_before() {
    check(
        "You can choose:\n- pizza\n- pasta, or\n* salad\n+ soup\n  • bread\n1. first\n2) second\n10. tenth",
        &[
            "You can choose:",
            "pizza",
            "pasta, or",
            "salad",
            "soup",
            "bread",
            "1. first",
            "2) second",
            "10. tenth",
        ],
    );
}

#[test]
fn not_a_list_item() {
    check(
        "Temperatures\n-5 degrees tonight\n2024. A good year\n**Note** that",
        &[
            "Temperatures -5 degrees tonight 2024.",
            "A good year Note that",
        ],
    );
}

#[test]
fn markdown_is_not_read_aloud() {
    check(
        "## Opening hours\nWe are open **every** day, *including* `Sunday`. 2 * 3 is six.",
        &[
            "Opening hours",
            "We are open every day, including Sunday.",
            "2 * 3 is six.",
        ],
    );
    check(
        "**Done.** Next one.\n\n---\n\n# Last.\nBody",
        &["Done.", "Next one.", "Last.", "Body"],
    );
}

#[test]
fn punctuation_alone_is_not_emitted() {
    check("... !!! Hello. —", &["Hello."]);
}

//! Periods after titles, abbreviations, initials and numbers.

use super::*;

#[test]
fn titles_never_end_a_sentence() {
    check(
        "Dr. Smith met Mr. Jones, Mrs. Brown and Ms. Green. Prof. White lives on St. Mark's Square. It took 30 ms. Yes.",
        &[
            "Dr. Smith met Mr. Jones, Mrs. Brown and Ms. Green.",
            "Prof. White lives on St. Mark's Square.",
            "It took 30 ms.",
            "Yes.",
        ],
    );
}

#[test]
fn italian_titles_times_and_abbreviations() {
    check(
        "Il Sig. Rossi e la Sig.ra Bianchi arrivano alle 10:30. Il Dott. Verdi e l'Ing. Neri \
         arrivano alle 9.30, p.es. domani. Chiami l'Avv. Gialli! Va bene.",
        &[
            "Il Sig. Rossi e la Sig.ra Bianchi arrivano alle 10:30.",
            "Il Dott. Verdi e l'Ing. Neri arrivano alle 9.30, p.es. domani.",
            "Chiami l'Avv. Gialli!",
            "Va bene.",
        ],
    );
    check(
        "Ci vediamo alle 9.30. La Dott.ssa Neri porta pane, vino ecc. e frutta. No. Grazie.",
        &[
            "Ci vediamo alle 9.30.",
            "La Dott.ssa Neri porta pane, vino ecc. e frutta.",
            "No.",
            "Grazie.",
        ],
    );
}

#[test]
fn e_g_i_e_and_etc() {
    check(
        "Bring fruit, e.g. apples, i.e. the red ones, etc. and more. Also bread, milk, etc. \
         Then pay. Some, e.g. Rome, are big.",
        &[
            "Bring fruit, e.g. apples, i.e. the red ones, etc. and more.",
            "Also bread, milk, etc.",
            "Then pay.",
            "Some, e.g. Rome, are big.",
        ],
    );
}

#[test]
fn vs_approx_and_no_before_a_digit() {
    check(
        "It's Italy vs. France at approx. 9 pm. Room No. 5 is free. Say no. Then leave.",
        &[
            "It's Italy vs. France at approx. 9 pm.",
            "Room No. 5 is free.",
            "Say no.",
            "Then leave.",
        ],
    );
}

#[test]
fn initials_and_dotted_abbreviations() {
    check(
        "J. R. R. Tolkien wrote it. He lived in the U.S. for a while. The U.S. Army too. Ok.",
        &[
            "J. R. R. Tolkien wrote it.",
            "He lived in the U.S. for a while.",
            "The U.S. Army too.",
            "Ok.",
        ],
    );
}

#[test]
fn numbers_versions_and_times() {
    check(
        "Pi is 3.14 today. We have 1.000.000 users. Version v2.1 is out. We meet at 10.30. \
         Or at 10:30. Call 3. Come!",
        &[
            "Pi is 3.14 today.",
            "We have 1.000.000 users.",
            "Version v2.1 is out.",
            "We meet at 10.30.",
            "Or at 10:30.",
            "Call 3.",
            "Come!",
        ],
    );
}

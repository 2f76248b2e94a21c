//! The `Content-Type` check of webhooks, for any header value: a form in
//! any letter case, with any parameters and blanks, is a form; nothing else
//! is (its body is then signed through `bodySHA256`).

use proptest::prelude::*;

use super::is_form_type;

const FORM: &str = "application/x-www-form-urlencoded";

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_form_in_any_case_with_any_parameters_is_a_form(
        upper in prop::collection::vec(any::<bool>(), FORM.len()),
        before in "[ \\t]{0,3}", after in "[ \\t]{0,3}",
        parameters in prop::option::of(";[ -~]{0,40}"),
    ) {
        let essence: String = FORM
            .chars()
            .zip(upper)
            .map(|(c, up)| if up { c.to_ascii_uppercase() } else { c })
            .collect();
        let header = format!("{before}{essence}{after}{}", parameters.unwrap_or_default());
        prop_assert!(is_form_type(&header), "{header:?}");
    }

    #[test]
    fn anything_else_is_not_a_form(
        header in any::<String>(),
        at in any::<prop::sample::Index>(),
        extra in "[!-:<-~]",
    ) {
        // Text that does not name a form is not one.
        if !header.to_ascii_lowercase().contains(FORM) {
            prop_assert!(!is_form_type(&header), "{header:?}");
        }
        // Nor is a form's name with one more character anywhere in it.
        let i = at.index(FORM.len() + 1);
        let near = format!("{}{extra}{}", &FORM[..i], &FORM[i..]);
        prop_assert!(!is_form_type(&near), "{near:?}");
    }
}

//! What may appear in logs and in `/api/status`: phone numbers masked to their
//! last four digits, so a log file never holds a caller's full number.

/// Masks every digit but the last four: `+14155551234` → `+*******1234`.
/// Other characters (`+`, spaces) are kept so the shape stays recognisable. A
/// value with four digits or fewer (`client:alice`, `anonymous`) is not a phone
/// number worth keeping the tail of: every letter and digit is masked.
pub fn mask_phone(number: &str) -> String {
    let digits = number.chars().filter(char::is_ascii_digit).count();
    if digits <= 4 {
        return number
            .chars()
            .map(|c| if c.is_alphanumeric() { '*' } else { c })
            .collect();
    }
    let mut to_mask = digits - 4;
    number
        .chars()
        .map(|c| {
            if c.is_ascii_digit() && to_mask > 0 {
                to_mask -= 1;
                '*'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::mask_phone;

    #[test]
    fn keeps_only_the_last_four_digits() {
        assert_eq!(mask_phone("+14155551234"), "+*******1234");
        assert_eq!(mask_phone("+39 02 1234 5678"), "+** ** **** 5678");
        assert_eq!(mask_phone("1234"), "****");
        assert_eq!(mask_phone(""), "");
        assert_eq!(mask_phone("anonymous"), "*********");
    }
}

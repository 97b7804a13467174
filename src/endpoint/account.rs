//! The account of a body that is not an envelope, for the quarantine.

use crate::AccountId;

/// The `accountId` of a body that is not an envelope, when it can be read:
/// the digits after the first `"accountId":`, even if the JSON around them
/// is broken.
pub(super) fn account_of(body: &[u8]) -> Option<AccountId> {
    const KEY: &[u8] = b"\"accountId\"";
    let at = body.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let rest = &body[at..];
    let rest = &rest[rest.iter().position(|b| !b.is_ascii_whitespace())?..];
    let rest = rest.strip_prefix(b":")?;
    let rest = &rest[rest.iter().position(|b| !b.is_ascii_whitespace())?..];
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&rest[..digits])
        .ok()?
        .parse()
        .ok()
        .map(AccountId)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_of_a_broken_body_is_read_when_it_can_be() {
        assert_eq!(
            account_of(br#"{"accountId": 42, "events": [,]}"#),
            Some(AccountId(42))
        );
        assert_eq!(account_of(br#"{"accountId":"x"}"#), None);
        assert_eq!(account_of(b"nothing"), None);
    }
}

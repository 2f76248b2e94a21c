//! Properties of `GET /api/calls`'s query parameters, for any query string a
//! client may send: numbers and times are read as written (an unencoded `+`
//! included) or refused with a 400 naming the parameter; the query itself is
//! read or refused with a 400, never a panic.

use axum::extract::Query;
use axum::http::{StatusCode, Uri};
use chrono::{DateTime, FixedOffset, SecondsFormat, TimeZone, Utc};
use proptest::prelude::*;

use super::{ListQuery, number, time};
use crate::model::is_e164;

fn e164() -> impl Strategy<Value = String> {
    "\\+[1-9][0-9]{7,14}"
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    // Years 1 to 9999: what RFC 3339 can write.
    (-62_135_596_800i64..253_402_300_799, 0..1_000_000_000u32)
        .prop_filter_map("a time chrono can hold", |(s, ns)| {
            DateTime::from_timestamp(s, ns)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_number_is_read_as_written_or_with_its_plus_decoded_as_a_space(
        n in e164(), before in " {0,2}", after in "[ \\t]{0,2}"
    ) {
        prop_assert_eq!(number(Some(format!("{before}{n}{after}")), "from").ok(), Some(Some(n.clone())));
        // `?from=+1555…` unencoded: the `+` arrives as a space.
        let spaced = format!(" {}{after}", &n[1..]);
        prop_assert_eq!(number(Some(spaced), "from").ok(), Some(Some(n)));
        prop_assert!(matches!(number(None, "from"), Ok(None)));
    }

    #[test]
    fn anything_else_is_not_a_number(text in prop_oneof![
        any::<String>(),
        "[+ ]?[0-9]{0,17}[a-z+ ]?",
    ]) {
        match number(Some(text.clone()), "to") {
            Ok(Some(n)) => {
                prop_assert!(is_e164(&n), "{n:?}");
                // Only blanks and the plus are ever added or dropped.
                let digits = |s: &str| s.chars().filter(|c| !c.is_whitespace() && *c != '+').collect::<String>();
                prop_assert_eq!(digits(&n), digits(&text));
            }
            Ok(None) => prop_assert!(false, "a value is never absent"),
            Err(e) => {
                prop_assert_eq!(e.0, StatusCode::BAD_REQUEST);
                prop_assert!(e.1.starts_with("to "), "{}", e.1);
            }
        }
    }

    #[test]
    fn a_time_is_read_in_any_offset(
        t in instant(), offset_minutes in -23 * 60..=23 * 60i32, zulu in any::<bool>()
    ) {
        let text = if zulu {
            t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
        } else {
            let offset = FixedOffset::east_opt(offset_minutes * 60)
                .ok_or_else(|| TestCaseError::fail("offset in range"))?;
            offset.from_utc_datetime(&t.naive_utc()).to_rfc3339()
        };
        prop_assert_eq!(time(Some(format!(" {text} ")), "since").ok(), Some(Some(t)), "{}", text);
    }

    #[test]
    fn anything_else_is_not_a_time(text in prop_oneof![
        any::<String>(),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,12})?([Zz]|[+-][0-9]{2}:[0-9]{2})?",
    ]) {
        match time(Some(text.clone()), "until") {
            // Only RFC 3339 gets through (chrono also takes a space or a
            // lowercase `t` for the `T`, as RFC 3339 section 5.6 allows).
            Ok(Some(_)) => {
                let rfc3339 = regex::Regex::new(
                    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$",
                )
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(rfc3339.is_match(text.trim()), "{text:?}");
            }
            Ok(None) => prop_assert!(false, "a value is never absent"),
            Err(e) => {
                prop_assert_eq!(e.0, StatusCode::BAD_REQUEST);
                prop_assert!(e.1.starts_with("until "), "{}", e.1);
            }
        }
    }

    #[test]
    fn a_query_is_read_as_sent(
        limit in prop::option::of(any::<u32>()),
        before in prop::option::of(any::<String>()),
        from in prop::option::of(any::<String>()),
        status in prop::option::of(any::<String>()),
    ) {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if let Some(l) = limit {
            q.append_pair("limit", &l.to_string());
        }
        for (k, v) in [("before", &before), ("from", &from), ("status", &status)] {
            if let Some(v) = v {
                q.append_pair(k, v);
            }
        }
        let uri: Uri = format!("/api/calls?{}", q.finish())
            .parse()
            .map_err(|e| TestCaseError::fail(format!("{e}")))?;
        let Query(read) = Query::<ListQuery>::try_from_uri(&uri)
            .map_err(|e| TestCaseError::fail(e.body_text()))?;
        prop_assert_eq!(read.limit, limit);
        prop_assert_eq!(read.before, before);
        prop_assert_eq!(read.from, from);
        prop_assert_eq!(read.status, status);
    }

    #[test]
    fn any_query_is_read_or_refused_with_a_400(query in prop_oneof![
        "[ -~]{0,80}",
        "((limit|before|from|to|since|until|status|x)=([a-zA-Z0-9+ .:-]|%[0-9A-Fa-f]{2}|%)*&?){0,6}",
    ]) {
        // What hyper would not accept as a request target never gets here.
        let Ok(uri) = format!("/api/calls?{query}").parse::<Uri>() else {
            return Ok(());
        };
        if let Err(rejection) = Query::<ListQuery>::try_from_uri(&uri) {
            use axum::response::IntoResponse;
            prop_assert_eq!(rejection.into_response().status(), StatusCode::BAD_REQUEST);
        }
    }
}

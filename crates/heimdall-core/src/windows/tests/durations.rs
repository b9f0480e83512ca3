//! Parsing and validation of reset durations, specs and zone names.

use super::*;

#[test]
fn parses_every_unit_and_displays_it_back() {
    let cases = [
        ("1s", 1, DurationUnit::Second),
        ("90m", 90, DurationUnit::Minute),
        ("12h", 12, DurationUnit::Hour),
        ("1d", 1, DurationUnit::Day),
        ("2w", 2, DurationUnit::Week),
        ("3M", 3, DurationUnit::Month),
        ("1Q", 1, DurationUnit::Quarter),
        ("1Y", 1, DurationUnit::Year),
        ("100000s", 100_000, DurationUnit::Second),
    ];
    for (text, count, unit) in cases {
        let parsed = duration(text);
        assert_eq!(parsed, ResetDuration { count, unit });
        assert_eq!(parsed.to_string(), text);
        assert_eq!(text.parse::<ResetDuration>(), Ok(parsed));
    }
}

#[test]
fn minute_and_month_are_told_apart_by_case() {
    assert_eq!(duration("1m").unit, DurationUnit::Minute);
    assert_eq!(duration("1M").unit, DurationUnit::Month);
    assert_eq!(problem("1D"), DurationProblem::UnknownUnit);
    assert_eq!(problem("1y"), DurationProblem::UnknownUnit);
    assert_eq!(problem("1q"), DurationProblem::UnknownUnit);
}

#[test]
fn rejects_malformed_durations() {
    let cases = [
        ("", DurationProblem::Empty),
        ("0d", DurationProblem::ZeroCount),
        ("1x", DurationProblem::UnknownUnit),
        ("-1d", DurationProblem::MissingCount),
        ("+1d", DurationProblem::MissingCount),
        ("d", DurationProblem::MissingCount),
        ("1 d", DurationProblem::UnknownUnit),
        (" 1d", DurationProblem::MissingCount),
        ("1d ", DurationProblem::UnknownUnit),
        ("1", DurationProblem::MissingUnit),
        ("1dd", DurationProblem::UnknownUnit),
        ("1ms", DurationProblem::UnknownUnit),
        ("1.5d", DurationProblem::UnknownUnit),
        ("01d", DurationProblem::LeadingZero),
        ("00d", DurationProblem::LeadingZero),
        ("\u{ff11}d", DurationProblem::MissingCount),
        ("1é", DurationProblem::UnknownUnit),
        ("100001s", DurationProblem::CountTooLarge),
        ("99999999999999999999d", DurationProblem::CountTooLarge),
    ];
    for (text, expected) in cases {
        assert_eq!(problem(text), expected, "{text:?}");
    }
}

#[test]
fn limits_the_total_length_to_one_hundred_years() {
    for ok in ["36500d", "5214w", "1200M", "400Q", "100Y", "100000h"] {
        assert_eq!(duration(ok).to_string(), ok);
    }
    for too_long in ["36501d", "5215w", "1201M", "401Q", "101Y"] {
        assert_eq!(problem(too_long), DurationProblem::TooLong, "{too_long}");
    }
}

#[test]
fn rate_limits_refuse_quarters() {
    let refused = parse_rate_limit_duration("1Q");
    assert_eq!(
        refused,
        Err(WindowError::InvalidDuration {
            input: "1Q".to_owned(),
            reason: DurationProblem::QuarterNotAllowed
        })
    );
    for ok in ["1s", "1m", "1h", "1d", "1w", "1M", "1Y"] {
        assert_eq!(parse_rate_limit_duration(ok), Ok(duration(ok)));
    }
    // Malformed input reports the syntax problem, not the quarter rule.
    assert_eq!(
        ResetDuration::parse_rate_limit("0Q"),
        Err(WindowError::InvalidDuration {
            input: "0Q".to_owned(),
            reason: DurationProblem::ZeroCount
        })
    );
    assert!(!DurationUnit::Quarter.allowed_for_rate_limits());
}

#[test]
fn error_messages_name_the_input_and_the_reason() {
    let message = ResetDuration::parse("0d").map_err(|e| e.to_string());
    assert_eq!(
        message,
        Err("invalid reset duration \"0d\": the count must be at least 1".to_owned())
    );
}

#[test]
fn new_checks_the_same_bounds_as_parse() {
    assert_eq!(
        ResetDuration::new(0, DurationUnit::Day),
        Err(DurationProblem::ZeroCount)
    );
    assert_eq!(
        ResetDuration::new(101, DurationUnit::Year),
        Err(DurationProblem::TooLong)
    );
    assert_eq!(
        ResetDuration::new(100_001, DurationUnit::Second),
        Err(DurationProblem::CountTooLarge)
    );
    assert_eq!(
        ResetDuration::new(7, DurationUnit::Day).map(|d| d.to_string()),
        Ok("7d".to_owned())
    );
}

#[test]
fn a_hand_built_zero_count_acts_as_one() {
    let zero = ResetDuration {
        count: 0,
        unit: DurationUnit::Hour,
    };
    let spec = WindowSpec::rolling(zero);
    let window = spec.window_at(at("2026-01-01T00:00:00Z"), at("2026-01-01T05:30:00Z"));
    assert_eq!(window.index, 5);
}

#[test]
fn spec_and_timezone_inputs_are_validated() {
    let day = duration("1d");
    assert_eq!(
        WindowSpec::new(day, true, Tz::UTC, 0),
        Err(WindowError::InvalidQuarterStartMonth(0))
    );
    assert_eq!(
        WindowSpec::new(day, true, Tz::UTC, 13),
        Err(WindowError::InvalidQuarterStartMonth(13))
    );
    assert!(WindowSpec::new(day, true, Tz::UTC, 12).is_ok());
    assert_eq!(parse_timezone("Europe/Berlin"), Ok(Tz::Europe__Berlin));
    assert_eq!(parse_timezone("UTC"), Ok(Tz::UTC));
    assert_eq!(
        parse_timezone("Mars/Olympus_Mons"),
        Err(WindowError::UnknownTimezone("Mars/Olympus_Mons".to_owned()))
    );
}

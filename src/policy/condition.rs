//! Condition operators with AWS's rules for missing keys, negation, `…IfExists`, set
//! qualifiers and policy variables.

use super::compile::{ArnPattern, CompiledCondition, CompiledValue};
use super::context::{ContextValue, RequestContext};
use super::glob::eq_ignore_case;
use super::model::{BaseOperator, SetQualifier};
use super::value;

/// Whether one condition (operator + key + values) holds for the request.
pub(crate) fn condition_holds(c: &CompiledCondition, ctx: &RequestContext<'_>) -> bool {
    let op = c.operator;
    let value = ctx.get(&c.key);
    if op.base == BaseOperator::Null {
        // `"true"`: the key must be absent (or null: an empty set); `"false"`: present and not
        // null. Several values are ORed.
        let present = match value {
            None => false,
            Some(ContextValue::Multi(vs)) => !vs.is_empty(),
            Some(ContextValue::Single(_)) => true,
        };
        return c
            .values
            .iter()
            .any(|v| matches!(v, CompiledValue::Null(want_absent) if *want_absent != present));
    }
    let Some(value) = value else {
        return match op.set {
            _ if op.if_exists => true,
            SetQualifier::ForAllValues => true,
            SetQualifier::ForAnyValue => false,
            SetQualifier::None => op.base.is_negated(),
        };
    };
    let one = |v: &str| value_matches(op.base, v, &c.values, ctx);
    match (op.set, value) {
        (SetQualifier::None, ContextValue::Single(v)) => one(v),
        // A single-valued operator on a multivalued key does not match (undocumented; see
        // docs/policy.md).
        (SetQualifier::None, ContextValue::Multi(_)) => false,
        (SetQualifier::ForAllValues, ContextValue::Single(v)) => one(v),
        (SetQualifier::ForAllValues, ContextValue::Multi(vs)) => vs.iter().all(|v| one(v)),
        (SetQualifier::ForAnyValue, ContextValue::Single(v)) => one(v),
        (SetQualifier::ForAnyValue, ContextValue::Multi(vs)) => vs.iter().any(|v| one(v)),
    }
}

/// One request value against the policy values: ORed for positive operators; for negated
/// operators the request value must match none of them (values ANDed).
fn value_matches(
    base: BaseOperator,
    v: &str,
    values: &[CompiledValue],
    ctx: &RequestContext<'_>,
) -> bool {
    let positive = values.iter().any(|pv| positive_match(base, v, pv, ctx));
    if base.is_negated() {
        !positive
    } else {
        positive
    }
}

fn positive_match(
    base: BaseOperator,
    v: &str,
    pv: &CompiledValue,
    ctx: &RequestContext<'_>,
) -> bool {
    use BaseOperator::*;
    match (base, pv) {
        (StringEquals | StringNotEquals | StringLike | StringNotLike, CompiledValue::Str(p)) => {
            p.matches(v, ctx) == Some(true)
        }
        (StringEqualsIgnoreCase | StringNotEqualsIgnoreCase, CompiledValue::Str(p)) => {
            match p.as_literal() {
                Some(lit) => eq_ignore_case(lit, v),
                None => p.matches(&v.to_lowercase(), ctx) == Some(true),
            }
        }
        (NumericEquals | NumericNotEquals, CompiledValue::Num(n)) => {
            value::parse_number(v).is_some_and(|x| x == *n)
        }
        (NumericLessThan, CompiledValue::Num(n)) => value::parse_number(v).is_some_and(|x| x < *n),
        (NumericLessThanEquals, CompiledValue::Num(n)) => {
            value::parse_number(v).is_some_and(|x| x <= *n)
        }
        (NumericGreaterThan, CompiledValue::Num(n)) => {
            value::parse_number(v).is_some_and(|x| x > *n)
        }
        (NumericGreaterThanEquals, CompiledValue::Num(n)) => {
            value::parse_number(v).is_some_and(|x| x >= *n)
        }
        (DateEquals | DateNotEquals, CompiledValue::Date(d)) => {
            value::parse_date(v).is_some_and(|x| x == *d)
        }
        (DateLessThan, CompiledValue::Date(d)) => value::parse_date(v).is_some_and(|x| x < *d),
        (DateLessThanEquals, CompiledValue::Date(d)) => {
            value::parse_date(v).is_some_and(|x| x <= *d)
        }
        (DateGreaterThan, CompiledValue::Date(d)) => value::parse_date(v).is_some_and(|x| x > *d),
        (DateGreaterThanEquals, CompiledValue::Date(d)) => {
            value::parse_date(v).is_some_and(|x| x >= *d)
        }
        (Bool, CompiledValue::Bool(p)) => match p.as_literal() {
            Some(lit) => eq_ignore_case(lit, v.trim()),
            None => p.matches(&v.trim().to_lowercase(), ctx) == Some(true),
        },
        (BinaryEquals, CompiledValue::Binary(b)) => match value::decode_base64(v) {
            Some(bytes) => bytes == *b,
            None => v.as_bytes() == b.as_slice(),
        },
        (IpAddress | NotIpAddress, CompiledValue::Ip(cidr)) => {
            value::parse_ip(v).is_some_and(|ip| cidr.contains(ip))
        }
        (ArnEquals | ArnLike | ArnNotEquals | ArnNotLike, CompiledValue::Arn(p)) => {
            arn_matches(p, v, ctx)
        }
        _ => false,
    }
}

/// `Arn*`: each of the six colon-separated parts matched on its own, so wildcards never cross a
/// colon within the first five segments.
pub(crate) fn arn_matches(p: &ArnPattern, v: &str, ctx: &RequestContext<'_>) -> bool {
    // Up to five `:` split; the sixth part (the resource) keeps its colons, as `splitn(6, ':')`.
    let mut rest = Some(v);
    for (i, seg) in p.segments.iter().enumerate() {
        let Some(text) = rest else {
            return false;
        };
        let part = match crate::text::split_once(text, b':') {
            Some((part, tail)) if i < 5 => {
                rest = Some(tail);
                part
            }
            _ => {
                rest = None;
                text
            }
        };
        if seg.matches(part, ctx) != Some(true) {
            return false;
        }
    }
    true
}

//! The TOML layers of the configuration: the built-in defaults, the user's
//! file and `PRONTO_<SECTION>_<KEY>` variables, merged key by key. The
//! defaults are the schema: unknown keys and values of the wrong type are
//! errors, so a typo never passes silently.

use std::collections::HashMap;

use toml::{Table, Value};

use super::{ConfigError, err};

pub(super) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(super) fn set(table: &mut Table, section: &str, key: &str, value: Value) {
    if let Some(Value::Table(t)) = table.get_mut(section) {
        t.insert(key.to_string(), value);
    }
}

/// Copies the user's values over the defaults, refusing unknown keys and values
/// of the wrong type. A section made only of tables (`[lines.en]`,
/// `[lines.it]`) also accepts a new table: a language the defaults lack, whose
/// keys are checked when the settings are read.
pub(super) fn overlay_file(
    defaults: &mut Table,
    user: Table,
    path: &str,
) -> Result<(), ConfigError> {
    for (section, value) in user {
        let Some(Value::Table(known)) = defaults.get_mut(&section) else {
            return err(format!("{path}: unknown section [{section}]"));
        };
        let Value::Table(values) = value else {
            return err(format!("{path}: {section} must be a [section]"));
        };
        overlay_table(known, values, path, &section)?;
    }
    Ok(())
}

fn overlay_table(
    known: &mut Table,
    values: Table,
    path: &str,
    prefix: &str,
) -> Result<(), ConfigError> {
    let open = !known.is_empty() && known.values().all(Value::is_table);
    for (key, value) in values {
        let name = format!("{prefix}.{key}");
        match (known.get_mut(&key), value) {
            (Some(Value::Table(inner)), Value::Table(user)) => {
                overlay_table(inner, user, path, &name)?
            }
            (Some(default), value) => {
                let value = same_type(default, value).ok_or_else(|| {
                    ConfigError(format!("{path}: {name} must be {}", type_name(default)))
                })?;
                *default = value;
            }
            (None, Value::Table(new)) if open => {
                known.insert(key, Value::Table(new));
            }
            (None, _) => return err(format!("{path}: unknown key {name}")),
        }
    }
    Ok(())
}

/// `PRONTO_<SECTION>_<KEY>` overrides for every key the defaults have.
pub(super) fn overlay_env(
    table: &mut Table,
    env: &HashMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    // Not tunables, but read by Pronto: they must not be reported as ignored.
    let mut known_vars: Vec<String> = super::env_vars::READ
        .iter()
        .map(|(var, _)| var.to_string())
        .collect();
    overlay_env_table(table, "PRONTO", env, &mut known_vars)?;
    let mut unknown: Vec<&String> = env
        .keys()
        .filter(|k| k.starts_with("PRONTO_") && !known_vars.contains(k))
        .collect();
    unknown.sort();
    for var in unknown {
        warnings.push(format!("{var} is not a Pronto setting and is ignored"));
    }
    Ok(())
}

/// Overrides every key of `table` (and of its sub-tables) from variables named
/// `{prefix}_{KEY}`.
fn overlay_env_table(
    table: &mut Table,
    prefix: &str,
    env: &HashMap<String, String>,
    known_vars: &mut Vec<String>,
) -> Result<(), ConfigError> {
    for (key, value) in table.iter_mut() {
        let var = format!("{prefix}_{}", key.to_uppercase());
        if let Value::Table(inner) = value {
            overlay_env_table(inner, &var, env, known_vars)?;
            continue;
        }
        if let Some(raw) = env.get(&var) {
            *value = parse_like(value, raw)
                .ok_or_else(|| ConfigError(format!("{var}={raw}: must be {}", type_name(value))))?;
        }
        known_vars.push(var);
    }
    Ok(())
}

fn same_type(default: &Value, value: Value) -> Option<Value> {
    match (default, value) {
        (Value::Float(_), Value::Integer(i)) => Some(Value::Float(i as f64)),
        (d, v) if std::mem::discriminant(d) == std::mem::discriminant(&v) => Some(v),
        _ => None,
    }
}

fn parse_like(default: &Value, raw: &str) -> Option<Value> {
    let raw = raw.trim();
    match default {
        Value::Integer(_) => raw.parse().ok().map(Value::Integer),
        Value::Float(_) => raw.parse().ok().map(Value::Float),
        Value::Boolean(_) => parse_bool(raw).map(Value::Boolean),
        Value::String(_) => Some(Value::String(raw.to_string())),
        // A list of strings, comma-separated.
        Value::Array(_) => Some(Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| Value::String(item.to_string()))
                .collect(),
        )),
        _ => None,
    }
}

pub(super) fn parse_bool(raw: &str) -> Option<bool> {
    match raw.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Integer(_) => "a whole number",
        Value::Float(_) => "a number",
        Value::Boolean(_) => "true or false",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Table(_) => "a table",
        _ => "a value of the documented type",
    }
}

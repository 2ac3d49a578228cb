//! Layering: built-in defaults < YAML file < `ANCHORAGE_*` environment <
//! command-line flags.
//!
//! All layers meet as one `serde_json::Value` tree. The defaults, serialized,
//! give the complete set of keys and each leaf's type, which is how an
//! environment string is typed and how an unmapped variable is recognised.
//! The merged tree is then deserialized once, through `serde_path_to_error`,
//! so any error names the dotted key it concerns.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::env::{env_name, leaves, typed_value, ENV_PREFIX, RESERVED_ENV};
use super::validate::Invalid;
use super::Config;
use crate::error::Error;

/// Where `from_process` looks for a file when `--config` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/anchorage/anchorage.yaml";

/// The inputs of [`load`]. Tests build one by hand instead of touching the
/// process environment.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// YAML file; it must exist when set.
    pub file: Option<PathBuf>,
    /// Environment variables; only `ANCHORAGE_*` ones are looked at.
    pub env: Vec<(String, String)>,
    /// Flag values by dotted key, applied last.
    pub overrides: Vec<(String, Value)>,
}

impl ConfigSource {
    /// Sources of a running process: the `ANCHORAGE_*` environment, and the
    /// `--config` file, else [`DEFAULT_CONFIG_FILE`] only if it exists. An
    /// explicit file that does not exist fails in [`load`].
    pub fn from_process(file_flag: Option<PathBuf>) -> Self {
        let file = file_flag.or_else(|| {
            let default = PathBuf::from(DEFAULT_CONFIG_FILE);
            default.exists().then_some(default)
        });
        // `vars_os` rather than `vars`, which panics on a non-UTF-8 variable
        // anywhere in the environment, even one unrelated to anchorage.
        let env = std::env::vars_os()
            .filter_map(|(name, value)| {
                let name = name.into_string().ok()?;
                let value = value.to_string_lossy().into_owned();
                name.starts_with(ENV_PREFIX).then_some((name, value))
            })
            .collect();
        Self {
            file,
            env,
            overrides: Vec::new(),
        }
    }
}

/// A loaded, validated configuration.
#[derive(Debug)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Things to log once logging is up (e.g. an unmapped `ANCHORAGE_*` variable).
    pub warnings: Vec<String>,
}

/// Layers `src` over the defaults, deserializes and validates the result.
pub fn load(src: &ConfigSource) -> Result<Loaded, Error> {
    let file = match &src.file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|err| Error::Config {
                key: path.display().to_string(),
                message: format!("cannot read configuration file: {err}"),
            })?;
            tracing::debug!(path = %path.display(), "read configuration file");
            Some((path.as_path(), text))
        }
        None => None,
    };
    layer(
        file.as_ref().map(|(path, text)| (*path, text.as_str())),
        src,
    )
}

/// [`load`] with the file already read, so tests need no files on disk.
pub(super) fn layer(file: Option<(&Path, &str)>, src: &ConfigSource) -> Result<Loaded, Error> {
    let defaults =
        serde_json::to_value(Config::default()).map_err(|err| err_at("(defaults)", err))?;
    let mut tree = defaults.clone();
    // Which layer above the file set a key, to name it in errors.
    let mut origins: BTreeMap<String, String> = BTreeMap::new();
    let mut warnings = Vec::new();

    if let Some((path, text)) = file {
        let overlay: Value =
            serde_yaml_ng::from_str(text).map_err(|err| err_at(path.display(), err))?;
        match overlay {
            Value::Null => {} // an empty or all-comments file
            Value::Object(map) => merge_object(&mut tree, map, "")?,
            _ => {
                return Err(err_at(
                    path.display(),
                    "expected a mapping of keys at the top level",
                ))
            }
        }
    }

    let by_env: HashMap<String, (String, &Value)> = leaves(&defaults)
        .into_iter()
        .map(|(key, default)| (env_name(&key), (key, default)))
        .collect();
    for (name, raw) in &src.env {
        if !name.starts_with(ENV_PREFIX) || RESERVED_ENV.contains(&name.as_str()) {
            continue;
        }
        let Some((key, default)) = by_env.get(name) else {
            warnings.push(format!(
                "{name} is set but no configuration key maps to it; ignored"
            ));
            continue;
        };
        let value = typed_value(raw, default)
            .map_err(|message| err_at(key, format!("{name}: {message}")))?;
        set(&mut tree, key, value);
        origins.insert(key.clone(), name.clone());
    }

    for (key, value) in &src.overrides {
        if pointer(&defaults, key).is_none() {
            return Err(err_at(
                key,
                "unknown configuration key (command-line override)",
            ));
        }
        set(&mut tree, key, value.clone());
        origins.insert(key.clone(), "command-line flag".to_owned());
    }

    let config: Config = serde_path_to_error::deserialize(tree).map_err(|err| {
        let key = err.path().to_string();
        with_origin(key, err.into_inner().to_string(), &origins)
    })?;
    let config = super::secret_files::resolve(config)?;
    config
        .check()
        .map_err(|Invalid { key, message }| with_origin(key, message, &origins))?;
    Ok(Loaded { config, warnings })
}

/// Merges a YAML mapping into the tree at `prefix`. Keys the tree lacks are
/// inserted so that deserialization rejects them by name.
fn merge_object(tree: &mut Value, overlay: Map<String, Value>, prefix: &str) -> Result<(), Error> {
    let Value::Object(base) = tree else {
        unreachable!("merge_object is only called on objects");
    };
    for (name, value) in overlay {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match (base.get_mut(&name), value) {
            (Some(slot @ Value::Object(_)), Value::Object(map)) => merge_object(slot, map, &key)?,
            // A section whose keys are all commented out reads as null: keep defaults.
            (Some(Value::Object(_)), Value::Null) => {}
            (Some(Value::Object(_)), other) => {
                return Err(err_at(
                    &key,
                    format!("expected a mapping of keys, found {other}"),
                ));
            }
            (_, value) => {
                base.insert(name, value);
            }
        }
    }
    Ok(())
}

/// The node at a dotted key, if the tree has it.
fn pointer<'a>(tree: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted
        .split('.')
        .try_fold(tree, |node, segment| node.as_object()?.get(segment))
}

/// Sets the node at a dotted key, creating missing objects on the way. The
/// keys come from the defaults, whose intermediate nodes `merge_object`
/// keeps as objects.
fn set(tree: &mut Value, dotted: &str, value: Value) {
    let mut node = tree;
    for segment in dotted.split('.') {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let Value::Object(map) = node else {
            unreachable!()
        };
        node = map.entry(segment).or_insert(Value::Null);
    }
    *node = value;
}

fn err_at(key: impl ToString, message: impl ToString) -> Error {
    Error::Config {
        key: key.to_string(),
        message: message.to_string(),
    }
}

/// An error naming the key, plus the variable or flag that set it, if one did.
fn with_origin(key: String, message: String, origins: &BTreeMap<String, String>) -> Error {
    let origin = origins.iter().find(|(set, _)| {
        key == **set
            || key
                .strip_prefix(set.as_str())
                .is_some_and(|rest| rest.starts_with(['.', '[']))
    });
    let message = match origin {
        Some((_, from)) => format!("{message} (set by {from})"),
        None => message,
    };
    Error::Config { key, message }
}

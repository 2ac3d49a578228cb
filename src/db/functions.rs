//! SQL functions used from diesel queries.

use diesel::sql_types::{Nullable, Text};

diesel::define_sql_function! {
    /// `lower(text)`.
    fn lower(x: Nullable<Text>) -> Nullable<Text>;
}

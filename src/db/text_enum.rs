//! [`text_enum!`]: an enum kept in a TEXT column and shown as text, written once. Each
//! variant names its text; the macro derives `as_str`, `ALL`, `Display`, `FromStr`
//! (anything else is a 400 naming what is expected) and diesel's mapping to `Text`, so
//! rows and queries carry the enum and a misspelt state cannot reach the database.

/// Defines `enum $name` with one text per variant. `$what` names it in errors
/// ("unknown role 'x' (expected member, orgadmin or sysadmin)").
#[macro_export]
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow)]
        #[diesel(sql_type = diesel::sql_types::Text)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: [Self; <[&str]>::len(&[$($text),+])] = [$(Self::$variant),+];

            /// The text stored and shown for this variant.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::error::Error;

            fn from_str(s: &str) -> ::std::result::Result<Self, Self::Err> {
                Self::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| {
                        $crate::error::Error::BadRequest(format!(
                            "unknown {} '{s}' (expected {})",
                            $what,
                            $crate::db::text_enum::one_of(&Self::ALL.map(Self::as_str))
                        ))
                    })
            }
        }

        impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>,
            ) -> diesel::serialize::Result {
                <str as diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg>>::to_sql(
                    self.as_str(),
                    out,
                )
            }
        }

        impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn from_sql(value: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
                let text = <String as diesel::deserialize::FromSql<
                    diesel::sql_types::Text,
                    diesel::pg::Pg,
                >>::from_sql(value)?;
                text.parse::<Self>()
                    .map_err(|_| format!("unknown {} '{text}' in the database", $what).into())
            }
        }
    };
}

/// `a`, `a or b`, `a, b or c`.
pub fn one_of(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    crate::text_enum! {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Colour ("colour") {
            Red = "red",
            DarkBlue = "dark-blue",
        }
    }

    #[test]
    fn names_round_trip_and_strangers_are_refused_by_name() {
        for colour in Colour::ALL {
            assert_eq!(colour.as_str().parse::<Colour>().unwrap(), colour);
            assert_eq!(colour.to_string(), colour.as_str());
        }
        let refused = "green".parse::<Colour>().unwrap_err().to_string();
        assert!(
            refused.contains("unknown colour 'green' (expected red or dark-blue)"),
            "{refused}"
        );
        assert_eq!(super::one_of(&["a", "b", "c"]), "a, b or c");
    }
}

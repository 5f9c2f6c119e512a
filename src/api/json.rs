//! Request bodies read strictly: an object naming one key twice is refused. `serde_json` keeps
//! the last silently, so a proxy or log that reads the first would see another request than
//! the kiosk acts on (`{"user_id": "alice", "user_id": "mallory"}`).

use serde::de::{Deserialize, Deserializer, Error, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A JSON value in which no object has a key twice.
pub struct Strict(pub Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(n.into())
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(n.into())
    }
    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Strict::deserialize(d).map(|s| s.0)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(v)) = a.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = a.next_key::<String>()? {
            let Strict(v) = a.next_value()?;
            if map.contains_key(&key) {
                return Err(A::Error::custom(format!("the key {key:?} is given twice; send it once")));
            }
            map.insert(key, v);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(s: &str) -> Result<Value, String> {
        serde_json::from_str::<Strict>(s).map(|s| s.0).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_what_serde_json_reads_and_refuses_a_key_twice() {
        let text = r#"{"a": [1, -2, 3.5, true, null, "é\u00e9"], "b": {"c": {}}, "d": 18446744073709551615}"#;
        assert_eq!(read(text).unwrap(), serde_json::from_str::<Value>(text).unwrap());
        let e = read(r#"{"user_id": "alice", "job_type": 4, "user_id": "mallory"}"#).unwrap_err();
        assert!(e.contains("\"user_id\" is given twice"), "{e}");
        // At any depth.
        assert!(read(r#"{"id_info": {"country": "NG", "country": "KE"}}"#).unwrap_err().contains("\"country\""));
        // The same key in two objects is no repeat.
        assert!(read(r#"[{"a": 1}, {"a": 2}]"#).is_ok());
        // serde_json's own depth limit still holds.
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(read(&deep).unwrap_err().contains("recursion limit"));
        // Numbers as serde_json reads them: past u64, exponents, negative zero.
        let numbers = "[100000000000000000000, 1e300, -0.0, -9223372036854775808]";
        assert_eq!(read(numbers).unwrap(), serde_json::from_str::<Value>(numbers).unwrap());
    }
}

//! The annual filtering review the DfE standards ask schools to record:
//! when it was held, who took part, what was checked and what was decided.

use rusqlite::params;
use serde::Serialize;

use super::{AdminError, AdminStore, now_ms};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReviewRow {
    pub id: i64,
    /// The date it was held, `YYYY-MM-DD`.
    pub held_on: String,
    pub participants: String,
    pub checked: String,
    pub decisions: String,
    pub recorded_by: String,
    pub recorded_at: i64,
}

/// `YYYY-MM-DD` with a real month and day.
pub fn check_date(text: &str) -> Result<(i64, u32, u32), AdminError> {
    let bad = || AdminError::Invalid(format!("'{text}' is not a date: write it as YYYY-MM-DD"));
    let mut parts = text.trim().splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let year: i64 = y.parse().map_err(|_| bad())?;
    let month: u32 = m.parse().map_err(|_| bad())?;
    let day: u32 = d.parse().map_err(|_| bad())?;
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if !(1970..=9999).contains(&year) || day == 0 || day > days_in_month {
        return Err(bad());
    }
    Ok((year, month, day))
}

pub fn check_text(field: &str, text: &str) -> Result<String, AdminError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(AdminError::Invalid(format!("say {field}")));
    }
    if text.len() > 5000 {
        return Err(AdminError::Invalid(format!(
            "{field}: at most 5000 characters"
        )));
    }
    Ok(text.to_string())
}

impl AdminStore {
    pub fn add_review(
        &self,
        held_on: &str,
        participants: &str,
        checked: &str,
        decisions: &str,
        by: &str,
    ) -> Result<ReviewRow, AdminError> {
        check_date(held_on)?;
        let participants = check_text("who took part", participants)?;
        let checked = check_text("what was checked", checked)?;
        let decisions = check_text("what was decided", decisions)?;
        let now = now_ms();
        let held_on = held_on.trim().to_string();
        let id = self.with(|conn| {
            conn.execute(
                "INSERT INTO reviews (held_on, participants, checked, decisions, recorded_by, recorded_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![held_on, participants, checked, decisions, by, now],
            )?;
            Ok(conn.last_insert_rowid())
        })?;
        Ok(ReviewRow {
            id,
            held_on,
            participants,
            checked,
            decisions,
            recorded_by: by.to_string(),
            recorded_at: now,
        })
    }

    /// Every review, the latest first.
    pub fn reviews(&self) -> Result<Vec<ReviewRow>, AdminError> {
        self.with(|conn| {
            let mut stmt = conn.prepare(
                "SELECT id, held_on, participants, checked, decisions, recorded_by, recorded_at
                 FROM reviews ORDER BY held_on DESC, id DESC",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(ReviewRow {
                    id: r.get(0)?,
                    held_on: r.get(1)?,
                    participants: r.get(2)?,
                    checked: r.get(3)?,
                    decisions: r.get(4)?,
                    recorded_by: r.get(5)?,
                    recorded_at: r.get(6)?,
                })
            })?;
            rows.collect()
        })
    }
}

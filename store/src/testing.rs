//! Test support (feature `test-support`): a way to age pending sign-ups, as if days went
//! by. (The throwaway PostgreSQL server is `micro-testkit`'s.)

impl crate::Store {
    /// Moves every pending sign-up's checkout `by_ms` into the past, as if days went by.
    pub async fn backdate_pending_signups(&self, by_ms: i64) {
        sqlx::query("UPDATE pending_signups SET created_at = created_at - $1")
            .bind(by_ms)
            .execute(&self.pool)
            .await
            .unwrap();
    }
}

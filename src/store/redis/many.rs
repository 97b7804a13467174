//! The set-based operations: a chunk of claims or commits in one script, a
//! slice of chunks in one pipeline (one round trip).

use std::time::{Duration, SystemTime};

use super::{
    GRACE_MS, RedisStore, commit_outcome, duration_millis, parse_state, redis_error, stored_state,
    unix_millis,
};
use crate::store::{
    Claim, ClaimOwner, ClaimRequest, Commit, CommitOutcome, DedupKey, MANY_CHUNK, StoreError,
    Versioned,
};

impl RedisStore {
    /// [`Store::claim_many`](crate::store::Store::claim_many): one script
    /// per chunk, every chunk in one pipeline. The script claims the events
    /// one after another, so a repeated event finds its first claim.
    pub(super) async fn claim_chunks(
        &self,
        requests: &[ClaimRequest<'_>],
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<Vec<(Claim, Versioned)>, StoreError> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let now_ms = unix_millis(now);
        let lease_ms = duration_millis(lease);
        let ttl_ms = lease_ms.saturating_add(GRACE_MS).max(1000);
        let token = owner.to_hex();
        let mut pipe = ::redis::pipe();
        pipe.load_script(&self.scripts.claim_many).ignore();
        let mut invocations = Vec::new();
        for chunk in requests.chunks(MANY_CHUNK) {
            let mut invocation = self.scripts.claim_many.prepare_invoke();
            invocation.arg(now_ms).arg(lease_ms).arg(ttl_ms).arg(&token);
            for request in chunk {
                invocation.key(self.event_key(request.key));
            }
            let mut states = chunk.len();
            for request in chunk {
                match request.state {
                    Some(state) => {
                        invocation.key(self.state_key(state));
                        states += 1;
                        invocation.arg(states);
                    }
                    None => {
                        invocation.arg(0);
                    }
                }
            }
            invocations.push(invocation);
        }
        for invocation in &invocations {
            pipe.invoke_script(invocation);
        }
        let mut conn = self.conn.clone();
        let answers: Vec<(Vec<i64>, Vec<Option<String>>)> = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_error("claim failed", e))?;
        let mut out = Vec::with_capacity(requests.len());
        for (codes, states) in answers {
            if codes.len() != states.len() {
                return Err(StoreError::new("redis: claim script answered unevenly"));
            }
            for (code, stored) in codes.into_iter().zip(states) {
                out.push(match code {
                    0 => (Claim::Claimed(owner), parse_state(stored)?),
                    1 => (Claim::AlreadyDecided, Versioned::default()),
                    2 => (Claim::InFlight, Versioned::default()),
                    other => {
                        return Err(StoreError::new(format!(
                            "redis: claim script answered {other}"
                        )));
                    }
                });
            }
        }
        if out.len() != requests.len() {
            return Err(StoreError::new(format!(
                "redis: claim answered {} events of {}",
                out.len(),
                requests.len()
            )));
        }
        Ok(out)
    }

    /// [`Store::commit_many`](crate::store::Store::commit_many): one script
    /// per chunk, every chunk in one pipeline; the script commits one after
    /// another, exactly as one [`Store::commit`](crate::store::Store::commit)
    /// after another.
    pub(super) async fn commit_chunks(
        &self,
        commits: &[Commit<'_>],
    ) -> Result<Vec<CommitOutcome>, StoreError> {
        let script = &self.scripts.commit_many;
        let invocations = self.commit_invocations(script, commits)?;
        self.run_commits(script, &invocations, commits.len()).await
    }

    /// One invocation of `script` (the commit script, or one that begins
    /// with it) per chunk of `commits`, with the commit script's keys and
    /// arguments.
    pub(super) fn commit_invocations<'s>(
        &self,
        script: &'s ::redis::Script,
        commits: &[Commit<'_>],
    ) -> Result<Vec<::redis::ScriptInvocation<'s>>, StoreError> {
        let mut invocations = Vec::new();
        for chunk in commits.chunks(MANY_CHUNK) {
            let mut invocation = script.prepare_invoke();
            invocation.arg(GRACE_MS);
            for commit in chunk {
                invocation.key(self.event_key(commit.key));
            }
            let mut keys = chunk.len();
            for commit in chunk {
                self.commit_args(&mut invocation, commit, &mut keys)?;
            }
            invocations.push(invocation);
        }
        Ok(invocations)
    }

    /// One commit's six arguments to a commit script (token, remembered
    /// until, then the state's index in KEYS or 0, expected version, the
    /// state's stored value and kept until), and its state's key after
    /// the `keys` given so far.
    pub(super) fn commit_args(
        &self,
        invocation: &mut ::redis::ScriptInvocation<'_>,
        commit: &Commit<'_>,
        keys: &mut usize,
    ) -> Result<(), StoreError> {
        invocation
            .arg(commit.token.to_hex())
            .arg(unix_millis(commit.remember_until));
        match commit.update {
            Some(update) => {
                let value = stored_state(&update, commit.state_until)?;
                invocation.key(self.state_key(update.key));
                *keys += 1;
                invocation
                    .arg(*keys)
                    .arg(update.expected_version)
                    .arg(value)
                    .arg(unix_millis(commit.state_until));
            }
            None => {
                invocation.arg(0).arg(0).arg("").arg(0);
            }
        }
        Ok(())
    }

    /// Runs commit invocations in one pipeline: one outcome per commit.
    pub(super) async fn run_commits(
        &self,
        script: &::redis::Script,
        invocations: &[::redis::ScriptInvocation<'_>],
        commits: usize,
    ) -> Result<Vec<CommitOutcome>, StoreError> {
        if commits == 0 {
            return Ok(Vec::new());
        }
        let mut pipe = ::redis::pipe();
        pipe.load_script(script).ignore();
        for invocation in invocations {
            pipe.invoke_script(invocation);
        }
        let mut conn = self.conn.clone();
        let answers: Vec<Vec<i64>> = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_error("commit failed", e))?;
        let outcomes = answers
            .into_iter()
            .flatten()
            .map(commit_outcome)
            .collect::<Result<Vec<_>, _>>()?;
        if outcomes.len() != commits {
            return Err(StoreError::new(format!(
                "redis: commit answered {} commits of {}",
                outcomes.len(),
                commits
            )));
        }
        Ok(outcomes)
    }

    /// [`Store::renew_many`](crate::store::Store::renew_many): one script
    /// per chunk, every chunk in one pipeline.
    pub(super) async fn renew_chunks(
        &self,
        claims: &[(&DedupKey, ClaimOwner)],
        lease: Duration,
    ) -> Result<Vec<bool>, StoreError> {
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        let lease_ms = duration_millis(lease);
        let ttl_ms = lease_ms.saturating_add(GRACE_MS).max(1000);
        let mut pipe = ::redis::pipe();
        pipe.load_script(&self.scripts.renew_many).ignore();
        let mut invocations = Vec::new();
        for chunk in claims.chunks(MANY_CHUNK) {
            let mut invocation = self.scripts.renew_many.prepare_invoke();
            invocation.arg(lease_ms).arg(ttl_ms);
            for (key, token) in chunk {
                invocation.key(self.event_key(key)).arg(token.to_hex());
            }
            invocations.push(invocation);
        }
        for invocation in &invocations {
            pipe.invoke_script(invocation);
        }
        let mut conn = self.conn.clone();
        let answers: Vec<Vec<i64>> = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_error("renew failed", e))?;
        let renewed: Vec<bool> = answers.into_iter().flatten().map(|a| a == 1).collect();
        if renewed.len() != claims.len() {
            return Err(StoreError::new(format!(
                "redis: renew answered {} claims of {}",
                renewed.len(),
                claims.len()
            )));
        }
        Ok(renewed)
    }

    /// The commit script, ready to run for `commit`.
    pub(super) fn commit_invocation(
        &self,
        commit: &Commit<'_>,
    ) -> Result<::redis::ScriptInvocation<'_>, StoreError> {
        let value = commit
            .update
            .map(|u| stored_state(&u, commit.state_until))
            .transpose()?;
        let mut invocation = self.scripts.commit.prepare_invoke();
        invocation
            .key(self.event_key(commit.key))
            .arg(commit.token.to_hex())
            .arg(unix_millis(commit.remember_until))
            .arg(GRACE_MS);
        if let (Some(update), Some(value)) = (commit.update, value) {
            invocation
                .key(self.state_key(update.key))
                .arg(update.expected_version)
                .arg(value)
                .arg(unix_millis(commit.state_until));
        }
        Ok(invocation)
    }
}

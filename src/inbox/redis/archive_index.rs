//! The archive's index: the sorted sets an archived delivery's events are
//! found by (`ax:e:{eventId}`, `ax:u:{userId}`, `ax:i:{loInstanceId}`),
//! and how the completion's script adds a delivery's entries.

use crate::inbox::{ArchivedEvent, DeliveryId};

/// The index entries of delivery `id`'s events under the inbox's prefix
/// `p`, flat (key, member, key, member, ...): `{p}ax:e:{eventId}`,
/// `{p}ax:u:{userId}`, `{p}ax:i:{loInstanceId}`, each member
/// `{id, 20 digits}:{position, 6 digits}`.
pub(super) fn index_entries(p: &str, id: DeliveryId, events: &[ArchivedEvent]) -> Vec<String> {
    let mut entries = Vec::with_capacity(events.len() * 6);
    for e in events {
        let member = format!("{:020}:{:06}", id.0, e.index);
        if let Some(event_id) = &e.event_id {
            entries.push(format!("{p}ax:e:{}", event_id.as_str()));
            entries.push(member.clone());
        }
        if let Some(user) = e.user_id {
            entries.push(format!("{p}ax:u:{user}"));
            entries.push(member.clone());
        }
        if let Some(instance) = &e.lo_instance_id {
            entries.push(format!("{p}ax:i:{}", instance.as_str()));
            entries.push(member);
        }
    }
    entries
}

/// The most members one `ZADD` of the completion adds (Lua's `unpack`
/// has a limit on the values it spreads).
const GROUP: usize = 500;

/// `entries` (key, member, ...) as the completion's script adds them: per
/// key, in the order keys first appear, its members in groups of at most
/// [`GROUP`]. A delivery's events often share a user or an instance,
/// whose set then takes one `ZADD`.
pub(super) fn index_groups(entries: &[String]) -> Vec<(&str, Vec<&str>)> {
    let mut keys: Vec<(&str, Vec<&str>)> = Vec::new();
    let mut at: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for pair in entries.chunks_exact(2) {
        let (key, member) = (pair[0].as_str(), pair[1].as_str());
        let k = *at.entry(key).or_insert_with(|| {
            keys.push((key, Vec::new()));
            keys.len() - 1
        });
        keys[k].1.push(member);
    }
    let mut groups = Vec::with_capacity(keys.len());
    for (key, members) in keys {
        for group in members.chunks(GROUP) {
            groups.push((key, group.to_vec()));
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::{GROUP, index_groups};

    /// Each key once per group, in the order keys first appear, its members
    /// in order and never more than a group's worth in one `ZADD`.
    #[test]
    fn index_entries_are_grouped_per_key_in_order() {
        let mut entries = Vec::new();
        for n in 0..(2 * GROUP + 3) {
            for key in [format!("e:{n}"), "i:course".to_owned()] {
                entries.push(key);
                entries.push(format!("m{n}"));
            }
        }
        let groups = index_groups(&entries);
        assert_eq!(groups.len(), 2 * GROUP + 3 + 3);
        assert_eq!(groups[0], ("e:0", vec!["m0"]));
        assert_eq!(groups[1].0, "i:course");
        let of_course: Vec<&str> = groups
            .iter()
            .filter(|(key, _)| *key == "i:course")
            .flat_map(|(_, members)| members.iter().copied())
            .collect();
        let expected: Vec<String> = (0..(2 * GROUP + 3)).map(|n| format!("m{n}")).collect();
        assert_eq!(of_course, expected);
        let sizes: Vec<usize> = groups
            .iter()
            .filter(|(key, _)| *key == "i:course")
            .map(|(_, members)| members.len())
            .collect();
        assert_eq!(sizes, [GROUP, GROUP, 3]);
        assert_eq!(
            groups.last(),
            Some(&(
                &*format!("e:{}", 2 * GROUP + 2),
                vec![&*format!("m{}", 2 * GROUP + 2)]
            ))
        );
    }
}

use super::*;

fn id(kind: IdentifierKind, v: &str) -> Identifier {
    Identifier::new(kind, v).expect("valid identifier")
}
fn uid(v: &str) -> Identifier {
    id(IdentifierKind::UserId, v)
}
fn email(v: &str) -> Identifier {
    id(IdentifierKind::Email, v)
}
fn anon(v: &str) -> Identifier {
    id(IdentifierKind::AnonymousId, v)
}
fn profile(pid: &str, ids: &[Identifier]) -> ProfileIdentifiers {
    ProfileIdentifiers {
        profile_id: pid.into(),
        identifiers: ids
            .iter()
            .map(|i| HeldIdentifier {
                identifier: i.clone(),
                attached_at: None,
            })
            .collect(),
    }
}
fn event(ids: &[Identifier], source: Option<&str>) -> IncomingIdentity {
    IncomingIdentity {
        identifiers: ids.to_vec(),
        source: source.map(str::to_owned),
        at: 1_700_000_000,
    }
}
fn guards() -> IdentityGuards {
    IdentityGuards::new(IdentityPolicy::default()).expect("default policy is valid")
}

#[test]
fn new_identifiers_create_a_profile() {
    let d = decide_stitch(
        &event(&[anon("a1"), email("ada@x.io")], None),
        &[],
        &guards(),
    );
    assert_eq!(d.target, None);
    assert_eq!(d.attach.len(), 2);
    assert!(d.refused.is_empty() && d.merges.is_empty());
}

#[test]
fn blocked_values_are_refused() {
    let ev = event(
        &[
            uid("undefined"),
            email("test@example.com"),
            anon("0000"),
            anon("ok-1"),
        ],
        None,
    );
    let d = decide_stitch(&ev, &[], &guards());
    assert_eq!(d.attach, vec![anon("ok-1")]);
    assert_eq!(d.refused.len(), 3);
    assert!(d
        .refused
        .iter()
        .all(|r| matches!(r.refusal, Refusal::Blocked { .. })));
    assert!(d.refused[0].refusal.explain().starts_with("refused:"));
    // A blocked value never links profiles, even when a profile holds it.
    let p = profile("p1", &[uid("undefined")]);
    let d = decide_stitch(&event(&[uid("undefined")], None), &[p], &guards());
    assert_eq!(d.target, None);
}

#[test]
fn custom_patterns_block() {
    let policy = IdentityPolicy {
        blocked_patterns: vec![r"@mailinator\.com$".into()],
        ..IdentityPolicy::default()
    };
    let g = IdentityGuards::new(policy).expect("valid");
    let d = decide_stitch(&event(&[email("x@mailinator.com")], None), &[], &g);
    assert!(d.attach.is_empty());
}

#[test]
fn anonymous_and_known_profiles_merge() {
    let anon_profile = profile("p-anon", &[anon("a1")]);
    let known = profile("p-known", &[uid("u1"), email("ada@x.io")]);
    let ev = event(&[uid("u1"), anon("a1")], None);
    let d = decide_stitch(&ev, &[anon_profile, known], &guards());
    // The user id outranks the anonymous id, so the known profile is the target.
    assert_eq!(d.target.as_deref(), Some("p-known"));
    assert_eq!(d.merges.len(), 1);
    assert_eq!(d.merges[0].from_profile, "p-anon");
    assert!(d.attach.is_empty());
}

#[test]
fn theft_guard_needs_authentication_to_join_two_user_profiles() {
    // Limits relaxed so only the theft guard can refuse.
    let mut policy = IdentityPolicy::default();
    policy.limits.clear();
    policy.trusted_sources = Some(vec!["backend".into()]);
    let g = IdentityGuards::new(policy).expect("valid");
    let a = profile("pa", &[uid("u1"), email("a@x.io")]);
    let b = profile("pb", &[uid("u2"), email("b@x.io")]);
    // No user id on the event: refused.
    let ev = event(&[email("a@x.io"), email("b@x.io")], Some("backend"));
    let d = decide_stitch(&ev, &[a.clone(), b.clone()], &g);
    assert!(!d.authenticated);
    assert!(d.merges.is_empty());
    assert!(matches!(
        d.refused_merges[0].refusal,
        Refusal::UnauthenticatedMerge { .. }
    ));
    // Identifiers of the refused profile are not copied onto the target either.
    assert!(matches!(
        d.refused[0].refusal,
        Refusal::HeldByUnmergedProfile { .. }
    ));
    // A user id from an untrusted source: refused.
    let ev = event(&[uid("u1"), email("b@x.io")], Some("browser"));
    let d = decide_stitch(&ev, &[a.clone(), b.clone()], &g);
    assert!(d.merges.is_empty() && d.refused_merges.len() == 1);
    // The same from a trusted source: allowed.
    let ev = event(&[uid("u1"), email("b@x.io")], Some("backend"));
    let d = decide_stitch(&ev, &[a, b], &g);
    assert!(d.authenticated);
    assert_eq!(d.merges.len(), 1);
}

#[test]
fn unauthenticated_event_may_still_merge_into_one_user_profile() {
    let a = profile("pa", &[uid("u1"), email("a@x.io")]);
    let b = profile("pb", &[anon("a9")]);
    let ev = event(&[email("a@x.io"), anon("a9")], None);
    let d = decide_stitch(&ev, &[a, b], &guards());
    assert_eq!(d.merges.len(), 1);
    assert_eq!(d.target.as_deref(), Some("pa"));
}

#[test]
fn user_id_limit_refuses_merging_two_users() {
    let a = profile("pa", &[uid("u1"), email("a@x.io")]);
    let b = profile("pb", &[uid("u2"), email("b@x.io")]);
    let ev = event(&[uid("u1"), email("b@x.io")], None);
    let d = decide_stitch(&ev, &[a, b], &guards());
    assert!(d.authenticated);
    assert_eq!(
        d.refused_merges[0].refusal,
        Refusal::LimitExceeded {
            kind: IdentifierKind::UserId,
            max: 1,
            would_have: 2
        }
    );
}

#[test]
fn attach_limit_prefers_higher_priority_kinds() {
    let mut policy = IdentityPolicy::default();
    policy.limits.insert(
        IdentifierKind::Email,
        KindLimit {
            max: 2,
            window_days: None,
        },
    );
    let g = IdentityGuards::new(policy).expect("valid");
    let p = profile("p", &[uid("u1"), email("a@x.io")]);
    let ev = event(&[uid("u1"), email("b@x.io"), email("c@x.io")], None);
    let d = decide_stitch(&ev, &[p], &g);
    assert_eq!(d.attach, vec![email("b@x.io")]);
    assert!(matches!(
        d.refused[0].refusal,
        Refusal::LimitExceeded {
            kind: IdentifierKind::Email,
            max: 2,
            would_have: 3
        }
    ));
    // A second user id on an event is refused by the one-user-id limit.
    let ev = event(&[uid("u1"), uid("u2")], None);
    let d = decide_stitch(&ev, &[profile("p", &[uid("u1")])], &g);
    assert!(d.attach.is_empty());
    assert_eq!(d.refused.len(), 1);
}

#[test]
fn windowed_limits_count_only_recent_identifiers() {
    let mut policy = IdentityPolicy::default();
    policy.limits.insert(
        IdentifierKind::Email,
        KindLimit {
            max: 1,
            window_days: Some(30),
        },
    );
    let g = IdentityGuards::new(policy).expect("valid");
    let now = 1_700_000_000;
    let mut p = profile("p", &[email("old@x.io")]);
    p.identifiers[0].attached_at = Some(now - 90 * 86_400);
    let d = decide_stitch(
        &event(&[email("new@x.io"), email("old@x.io")], None),
        &[p.clone()],
        &g,
    );
    assert_eq!(d.attach, vec![email("new@x.io")]);
    p.identifiers[0].attached_at = Some(now - 86_400);
    let d = decide_stitch(
        &event(&[email("new@x.io"), email("old@x.io")], None),
        &[p],
        &g,
    );
    assert!(d.attach.is_empty());
}

#[test]
fn policy_loads_from_toml_and_reports_all_problems() {
    let g = IdentityGuards::from_toml(
        r#"
        blocked_values = ["nobody"]
        priority = ["email", "user_id"]
        trusted_sources = ["crm"]
        [limits]
        user_id = { max = 1 }
        email = { max = 3, window_days = 90 }
        "#,
    )
    .expect("valid toml");
    assert_eq!(g.policy().priority[0], IdentifierKind::Email);
    assert_eq!(
        g.policy().limits[&IdentifierKind::Email].window_days,
        Some(90)
    );
    let err = IdentityGuards::from_toml(
        r#"
        blocked_patterns = ["("]
        priority = ["email", "email"]
        [limits]
        phone = { max = 0 }
        "#,
    )
    .expect_err("invalid");
    match err {
        IdentityError::InvalidSettings(problems) => assert_eq!(problems.len(), 3),
        other => panic!("unexpected {other:?}"),
    }
    assert!(IdentityGuards::from_toml("surprise = 1").is_err());
}

#[test]
fn a_new_user_id_on_a_shared_device_starts_its_own_profile() {
    let first = profile("p1", &[uid("u1"), anon("device-1")]);
    let ev = event(&[uid("u2"), anon("device-1")], None);
    let d = decide_stitch(&ev, &[first], &guards());
    assert_eq!(d.target, None, "the event is not u1's");
    assert_eq!(d.attach, vec![uid("u2")]);
    assert_eq!(d.refused_merges.len(), 1);
    assert_eq!(d.refused_merges[0].refusal.code(), "limit_exceeded");
    assert!(matches!(
        d.refused[0].refusal,
        Refusal::HeldByUnmergedProfile { .. }
    ));
    // An anonymous profile on the same device is still joined.
    let anon_only = profile("p0", &[anon("device-2")]);
    let ev = event(&[uid("u3"), anon("device-2")], None);
    let d = decide_stitch(&ev, &[anon_only], &guards());
    assert_eq!(d.target.as_deref(), Some("p0"));
    assert_eq!(d.attach, vec![uid("u3")]);
}

#[test]
fn external_id_limits_count_each_system_separately() {
    let mut policy = IdentityPolicy::default();
    policy.limits.insert(
        IdentifierKind::External,
        KindLimit {
            max: 1,
            window_days: None,
        },
    );
    let g = IdentityGuards::new(policy).expect("valid");
    let crm = |v: &str| Identifier::external("crm", v).expect("valid");
    let billing = |v: &str| Identifier::external("billing", v).expect("valid");
    let p = profile("p", &[uid("u1"), crm("c-1")]);
    let ev = event(&[uid("u1"), billing("b-1"), crm("c-2")], None);
    let d = decide_stitch(&ev, &[p], &g);
    assert_eq!(d.attach, vec![billing("b-1")]);
    assert_eq!(d.refused.len(), 1);
    assert_eq!(d.refused[0].identifier, crm("c-2"));
}

#[test]
fn the_policy_answers_through_the_store_contract() {
    let g = guards();
    let policy: &dyn StitchPolicy = &g;
    assert!(policy.blocked(&uid("null")).is_some());
    assert!(policy.blocked(&uid("u-42")).is_none());
    let d = policy.decide(&event(&[uid("u-42")], None), &[]);
    assert_eq!(d.attach, vec![uid("u-42")]);
}

#[test]
fn merges_without_an_event_keep_the_theft_guard_and_the_limits() {
    let g = guards();
    let policy: &dyn StitchPolicy = &g;
    let (a, b) = (
        profile("a", &[uid("u1"), anon("x1")]),
        profile("b", &[anon("x2"), email("b@x.io")]),
    );
    assert_eq!(policy.refuse_profile_merge(&a, &b, 0), None);
    let c = profile("c", &[uid("u2")]);
    assert_eq!(
        policy.refuse_profile_merge(&a, &c, 0).map(|r| r.code()),
        Some("unauthenticated_merge")
    );
    let many: Vec<Identifier> = (0..5).map(|n| email(&format!("e{n}@x.io"))).collect();
    let d = profile("d", &many);
    assert_eq!(
        policy.refuse_profile_merge(&b, &d, 0).map(|r| r.code()),
        Some("limit_exceeded")
    );
    // Without a policy the store applies the built-in rule alone.
    assert!(rapport_core::stitch::builtin_profile_merge_refusal(&a, &c).is_some());
    assert!(rapport_core::stitch::builtin_profile_merge_refusal(&b, &d).is_none());
}

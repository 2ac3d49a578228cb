// @generated-style diesel schema, kept in step with migrations/ by hand and checked by
// the `schema_matches_database` integration test.

diesel::table! {
    orgs (id) {
        id -> Uuid,
        name -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        oidc_subject -> Nullable<Text>,
        email -> Nullable<Text>,
        display_name -> Nullable<Text>,
        is_sysadmin -> Bool,
        created_at -> Timestamptz,
        last_login_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    memberships (id) {
        id -> Uuid,
        org_id -> Uuid,
        user_id -> Nullable<Uuid>,
        email -> Nullable<Text>,
        role -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    api_tokens (jti) {
        jti -> Uuid,
        org_id -> Nullable<Uuid>,
        user_id -> Nullable<Uuid>,
        subject -> Text,
        label -> Text,
        role -> Text,
        scopes -> Array<Text>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        parent_jti -> Nullable<Uuid>,
    }
}

diesel::table! {
    token_denylist (jti) {
        jti -> Uuid,
        expires_at -> Timestamptz,
        revoked_at -> Timestamptz,
    }
}

diesel::table! {
    pins (id) {
        id -> Uuid,
        org_id -> Uuid,
        cid -> Text,
        requested_cid -> Text,
        name -> Nullable<Text>,
        origins -> Array<Text>,
        meta -> Jsonb,
        status -> Text,
        info -> Jsonb,
        created -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    pin_counts (id) {
        id -> Int8,
        org_id -> Uuid,
        status -> Text,
        n -> Int8,
    }
}

diesel::table! {
    cid_refs (cid) {
        cid -> Text,
        refcount -> Int4,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    cid_origins (cid, origin) {
        cid -> Text,
        origin -> Text,
        added_at -> Timestamptz,
    }
}

diesel::table! {
    nodes (id) {
        id -> Uuid,
        name -> Text,
        kubo_peer_id -> Nullable<Text>,
        multiaddrs -> Array<Text>,
        state -> Text,
        kubo_healthy -> Bool,
        process_id -> Nullable<Uuid>,
        started_at -> Nullable<Timestamptz>,
        last_seen -> Nullable<Timestamptz>,
        cache_stats -> Jsonb,
        created_at -> Timestamptz,
        backend -> Nullable<Text>,
    }
}

diesel::table! {
    placements (cid, node_id) {
        cid -> Text,
        node_id -> Uuid,
        state -> Text,
        attempts -> Int4,
        generation -> Int8,
        fence -> Int8,
        preexisting -> Bool,
        progress -> Int8,
        update_from -> Nullable<Text>,
        info -> Nullable<Text>,
        not_before -> Nullable<Timestamptz>,
        first_attempt_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        replaced_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    owned_pins (node_id, cid) {
        node_id -> Uuid,
        cid -> Text,
        created_at -> Timestamptz,
        orphan_since -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    leases (name) {
        name -> Text,
        holder -> Nullable<Uuid>,
        holder_pid -> Nullable<Int4>,
        fence -> Int8,
        expires_at -> Nullable<Timestamptz>,
        kv_revision -> Nullable<Int8>,
    }
}

diesel::table! {
    cluster_state (id) {
        id -> Bool,
        maintenance -> Bool,
        maintenance_reason -> Nullable<Text>,
        maintenance_expires_at -> Nullable<Timestamptz>,
        maintenance_set_by -> Nullable<Text>,
        updated_at -> Timestamptz,
        rebalance_requested_at -> Nullable<Timestamptz>,
        rebalance_requested_by -> Nullable<Text>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Uuid,
        at -> Timestamptz,
        org_id -> Nullable<Uuid>,
        actor -> Text,
        action -> Text,
        target -> Text,
        details -> Jsonb,
        source_ip -> Nullable<Inet>,
    }
}

diesel::table! {
    login_attempts (state) {
        state -> Text,
        nonce -> Text,
        pkce_verifier -> Text,
        return_to -> Text,
        created_at -> Timestamptz,
        browser_hash -> Bytea,
    }
}

diesel::table! {
    sessions (id) {
        id -> Uuid,
        secret_hash -> Bytea,
        user_id -> Uuid,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        token_jti -> Nullable<Uuid>,
        token_claims -> Nullable<Jsonb>,
    }
}

diesel::table! {
    bootstrap_claims (email) {
        email -> Text,
        user_id -> Nullable<Uuid>,
        claimed_at -> Timestamptz,
    }
}

diesel::joinable!(memberships -> orgs (org_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(memberships -> users (user_id));
diesel::joinable!(api_tokens -> orgs (org_id));
diesel::joinable!(pins -> orgs (org_id));
diesel::joinable!(placements -> nodes (node_id));
diesel::joinable!(audit_log -> orgs (org_id));

diesel::allow_tables_to_appear_in_same_query!(
    orgs,
    users,
    memberships,
    api_tokens,
    token_denylist,
    pins,
    pin_counts,
    cid_refs,
    cid_origins,
    nodes,
    placements,
    owned_pins,
    leases,
    cluster_state,
    audit_log,
    login_attempts,
    sessions,
    bootstrap_claims,
);

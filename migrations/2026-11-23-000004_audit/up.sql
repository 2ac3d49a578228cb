-- Append-only record of admin and security actions.
CREATE TABLE audit_log (
    id          uuid PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    -- The org the action concerns; NULL for cluster-wide actions (visible to system only).
    org_id      uuid REFERENCES orgs (id) ON DELETE SET NULL,
    actor       text NOT NULL,
    action      text NOT NULL,
    target      text NOT NULL DEFAULT '',
    details     jsonb NOT NULL DEFAULT '{}',
    source_ip   inet
);
CREATE INDEX audit_log_org_at_idx ON audit_log (org_id, at DESC);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC);
CREATE INDEX audit_log_action_idx ON audit_log (action, at DESC);

ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_log_tenant ON audit_log
    USING (org_id = anchorage_current_org() OR anchorage_is_system())
    WITH CHECK (org_id = anchorage_current_org() OR anchorage_is_system());

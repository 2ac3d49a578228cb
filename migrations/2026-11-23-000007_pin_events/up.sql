-- Pin status changes, for /v1/events on every node: each new pin request and each change
-- of a request's status is announced with NOTIFY when its transaction commits. The
-- payload names the org; the server only ever forwards it to that org's subscribers.
-- `at` has microseconds: Postgres folds identical payloads sent in one transaction, and
-- a pin flipping back and forth must still give one event per change.
CREATE FUNCTION anchorage_pin_event() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('anchorage_pin_events', json_build_object(
        'org', NEW.org_id,
        'requestid', NEW.id,
        'cid', NEW.requested_cid,
        'old', CASE WHEN TG_OP = 'UPDATE' THEN OLD.status END,
        'new', NEW.status,
        'at', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
    )::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER pins_event_insert AFTER INSERT ON pins
    FOR EACH ROW EXECUTE FUNCTION anchorage_pin_event();
CREATE TRIGGER pins_event_status AFTER UPDATE OF status ON pins
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION anchorage_pin_event();

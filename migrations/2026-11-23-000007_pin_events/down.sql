DROP TRIGGER pins_event_status ON pins;
DROP TRIGGER pins_event_insert ON pins;
DROP FUNCTION anchorage_pin_event();

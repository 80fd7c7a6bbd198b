-- Which dispatch run claimed a notification, and when: the failure path of a run settles exactly the rows that
-- run claimed, and rows left in 'sending' by a run that died (n8n restarted mid-send) are claimed again later.
SET LOCAL ROLE kaizenity_owner;

ALTER TABLE ops.notifications
    ADD COLUMN claimed_by text,
    ADD COLUMN claimed_at timestamptz;

CREATE INDEX notifications_in_flight ON ops.notifications (claimed_at) WHERE status = 'sending';

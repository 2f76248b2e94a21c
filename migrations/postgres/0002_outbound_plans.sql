-- An outbound call's own greeting and instructions, from POST /api/calls until
-- its stream starts, possibly on another replica. No foreign key: the plan may
-- be written before the call's row; delete_call removes it.
CREATE TABLE outbound_plans (
    call_sid TEXT PRIMARY KEY,
    greeting TEXT,
    instructions TEXT
);

-- The inbox counts conversations per tab (all, mine, unassigned) for a status
-- on every list load. With inbox and assignee in the index the count is an
-- index-only scan instead of a scan of the whole table (resolved conversations
-- pile up over the years).
CREATE INDEX conversation_counts_idx
    ON conversation (workspace_id, status, inbox_id, assignee_id);

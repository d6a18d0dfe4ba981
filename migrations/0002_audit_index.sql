-- Audit queries ("what changed between T1 and T2, and who did it") read
-- versions by time and by author.
CREATE INDEX versions_by_created_at ON versions (created_at_us);
CREATE INDEX versions_by_author ON versions (author, created_at_us);

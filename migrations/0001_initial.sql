-- The initial schema: namespaces with their latest version, and every
-- version ever written (tombstones included).
CREATE TABLE namespaces (
  name           TEXT PRIMARY KEY,
  latest_version INTEGER NOT NULL,  -- highest version ever written; never decreases
  deleted        INTEGER NOT NULL   -- 1 when the latest version is a tombstone
) WITHOUT ROWID;

CREATE TABLE versions (
  namespace     TEXT    NOT NULL,
  version       INTEGER NOT NULL,
  revision      INTEGER NOT NULL UNIQUE,  -- store-wide commit order
  dtab          TEXT    NOT NULL,
  deleted       INTEGER NOT NULL,
  author        TEXT    NOT NULL,
  comment       TEXT    NOT NULL,
  created_at_us INTEGER NOT NULL,         -- microseconds since the Unix epoch
  PRIMARY KEY (namespace, version)
) WITHOUT ROWID;

-- The full schema of dl's table, for a DBA. The tools create it themselves
-- when it is absent, and upgrade a table made by the original Python
-- downloader in place by adding the columns and indexes below the line
-- (nullable or defaulted: existing rows and values are untouched).
-- The table name is configurable (--table / DL_TABLE); "files" is the default.
--
-- status: 0 pending, 2 processing, 1 done, -1 failed (the original's codes).

CREATE TABLE IF NOT EXISTS files (
    -- the original design's columns
    id VARCHAR(255) PRIMARY KEY,
    url TEXT NOT NULL,
    status TINYINT NOT NULL DEFAULT 0,
    file_path TEXT,
    download_time FLOAT,
    error_message TEXT,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    -- added by dl ------------------------------------------------------------
    attempts INT NOT NULL DEFAULT 0,        -- failed download attempts (retry budget)
    deliveries INT NOT NULL DEFAULT 0,      -- times a worker took the row
    claim_token VARCHAR(32) NULL,           -- fences a worker whose claim was given away
    lease_until DATETIME(3) NULL,           -- a processing row is claimable again after this (UTC)
    next_attempt_at DATETIME(3) NULL,       -- a pending row waits for its retry backoff (UTC)
    worker VARCHAR(255) NULL,               -- host:pid-suffix of the worker that holds (or last held) the row
    bytes BIGINT NULL,                      -- size of the done file
    sha256 CHAR(64) NULL,                   -- checksum of the done file
    http_status SMALLINT NULL,              -- last HTTP status
    finished_at DATETIME(3) NULL,           -- when the row became done or failed (UTC)
    expected_sha256 CHAR(64) NULL,          -- the checksum a task line asked for (or an operator set): a mismatch fails the row
    target_name TEXT CHARACTER SET utf8mb4 NULL, -- the file name a task line asked for (or an operator set)
    KEY idx_status (status),                -- the original's
    KEY idx_dl_due (status, next_attempt_at),
    KEY idx_dl_lease (status, lease_until),
    KEY idx_dl_finished (finished_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

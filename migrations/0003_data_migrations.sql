-- Checkpoints of data migrations into this schema (`kubently-storage migrate copy`): one row
-- per job (source and target), its state as JSON text — each store's resume position and
-- counts. A batch's rows and the checkpoint that moves past them are written in one
-- transaction, so a copy that dies at any moment resumes exactly after its last committed
-- batch: nothing is skipped and append-only data (audit entries) is never written twice.

CREATE TABLE data_migrations (
  job         text COLLATE "C" PRIMARY KEY,
  state       text NOT NULL,
  started_at  timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL,
  finished_at timestamptz
);

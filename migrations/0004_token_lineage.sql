-- Token lineage: the token that issued each token (NULL: the bootstrap token or a caller
-- without a token). Same conventions as 0001_initial.sql. No foreign key: a data migration
-- copies tokens in any order (a token before its issuer), and the backend itself keeps the
-- lineage whole — an insert under an issuer holds a share lock on the issuer's row, a revoke
-- locks every row of the issuer's tree before deleting it (see the tokens driver).

ALTER TABLE tokens ADD COLUMN issuer_id text COLLATE "C";
-- A revoke walks the tree down from the token it revokes.
CREATE INDEX tokens_issuer_id ON tokens (issuer_id) WHERE issuer_id IS NOT NULL;
-- Token pages are keyset over (created_at, id): each page starts after the last one's token.
CREATE INDEX tokens_created_at ON tokens (created_at, id);

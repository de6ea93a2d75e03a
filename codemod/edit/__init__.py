"""The edit: rewrite with libcst, keyword removal, the token check, diff, atomic write."""

"""Operations: reconciliation, cleanup and dead letters."""

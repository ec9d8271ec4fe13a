"""The service layer: a pass, a test mail, the retry policy; each adapter (DAG, CLI, views) calls these."""

"""The job service: a REST API over Ray Jobs with a durable job store (see DESIGN.md, "The service")."""

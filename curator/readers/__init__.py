"""Readers: each turns one input file into a stream of Arrow tables in the core schema."""

"""Stand-ins for the vendors' APIs and helpers shared by the tests."""

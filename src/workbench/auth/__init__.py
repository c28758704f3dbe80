"""Identity and authorization: users, sessions, API tokens, roles and the request guard."""

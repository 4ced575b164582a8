"""The web page: a Jinja2 shell and static files; every action is a keyed JSON API call."""

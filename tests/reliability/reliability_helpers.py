"""Helpers of the reliability tests that talk to the dashboard the way a browser does."""

from __future__ import annotations


def logged_in(app, username: str):
    """A test client with its own session, logged in as a demo user (password `<username>-demo`)."""
    client = app.server.test_client()
    response = client.post("/login", data={"username": username, "password": f"{username}-demo"})
    assert response.status_code == 302, username
    return client


def callback(client, outputs: list[tuple[str, str]], inputs: list[tuple[str, str, object]],
             state: list[tuple[str, str, object]] = ()):
    """POST one Dash callback request, as the browser's renderer would; returns the Flask response."""
    def props(items):
        return [{"id": i, "property": p, "value": v} for i, p, v in items]
    output = (f"{outputs[0][0]}.{outputs[0][1]}" if len(outputs) == 1
              else ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..")
    outs = [{"id": i, "property": p} for i, p in outputs]
    return client.post("/_dash-update-component", json={
        "output": output, "outputs": outs[0] if len(outs) == 1 else outs, "inputs": props(inputs),
        "state": props(state), "changedPropIds": [f"{i}.{p}" for i, p, _ in inputs]})


def answer(response, component: str, prop: str):
    """The value a callback response sets on component.prop."""
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response.get_json()["response"][component][prop]

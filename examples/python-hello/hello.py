# A kubeless Python function, unchanged: runs on CPython compiled to wasm.
# Try: curl -d Ada localhost:8080/hello-py
#      curl -H 'content-type: application/json' -d '{"name":"Ada"}' localhost:8080/hello-py


def handler(event, context):
    data = event["data"]
    if isinstance(data, dict):
        return {"greeting": f"Hello, {data.get('name', 'world')}!", "function": context["function-name"]}
    return f"Hello, {data or 'world'}!\n"

// A kubeless Node.js function, unchanged: runs on the Boa engine in wasm.
// Try: curl -d Ada localhost:8080/hello-js
//      curl -H 'content-type: application/json' -d '{"name":"Ada"}' localhost:8080/hello-js
module.exports = {
  handler: (event, context) => {
    const data = event.data;
    if (data !== null && typeof data === "object") {
      return { greeting: `Hello, ${data.name || "world"}!`, function: context["function-name"] };
    }
    return `Hello, ${data || "world"}!\n`;
  },
};

// Opens GraphiQL with the staff member's token in its headers editor. GraphiQL (which
// Strawberry serves with shouldPersistHeaders) keeps its headers in this origin's
// localStorage: the new headers go there, and into any tabs a previous visit saved, so an
// old token is not left behind in them.
(function () {
  var launch = document.getElementById("graphiql-launch");
  if (!launch) return;
  var headers = launch.dataset.headers;
  try {
    var storage = window.localStorage;
    storage.setItem("graphiql:headers", headers);
    storage.setItem("graphiql:shouldPersistHeaders", "true");
    var saved = storage.getItem("graphiql:tabState");
    if (saved) {
      var state = JSON.parse(saved);
      (state.tabs || []).forEach(function (tab) { tab.headers = headers; });
      storage.setItem("graphiql:tabState", JSON.stringify(state));
    }
  } catch (e) {
    return; // storage disabled or unreadable: the page shows the headers to paste instead
  }
  window.location.replace(launch.dataset.target);
})();

// Opens GraphiQL with the staff member's token in its headers editor: GraphiQL (with
// shouldPersistHeaders) reads its headers from localStorage on this same origin.
(function () {
  var launch = document.getElementById("graphiql-launch");
  if (!launch) return;
  try {
    window.localStorage.setItem("graphiql:headers", launch.dataset.headers);
  } catch (e) {
    return; // storage disabled: the page shows the header to paste instead
  }
  window.location.replace(launch.dataset.target);
})();

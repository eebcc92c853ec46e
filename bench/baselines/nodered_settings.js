// Node-RED settings for the benchmark baseline: editor and admin API off
// (not part of the data path), logging quiet, no credential secret prompt.
module.exports = {
    uiHost: "127.0.0.1",
    httpAdminRoot: false,
    httpNodeRoot: "/",
    credentialSecret: false,
    logging: { console: { level: "warn", metrics: false, audit: false } },
    editorTheme: { projects: { enabled: false } },
    functionGlobalContext: {},
};

// Scenario grants: filled in by its issue-17 task.
export default async function (t) {}

export { main } from "./main.js";
export type { CliContext, Command } from "./context.js";

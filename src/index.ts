/**
 * The library surface: what the CLI wires together, for scripts and benchmarks that
 * want one step of the pipeline (config → secrets → plan → apply → observe).
 */
export { apply } from "./catalog/apply.js";
export { readCatalogMetadata } from "./catalog/metadata.js";
export { catalogPathFor, formatStatement, plan } from "./catalog/plan.js";
export { loadJob, loadRunner } from "./config/load.js";
export { runnerSectionSchema } from "./config/runner-schema.js";
export { DuckcronError } from "./errors.js";
export { EventBus } from "./observe/events.js";
export { Scrubber } from "./observe/scrubber.js";
export { runTenant } from "./run-tenant.js";
export { Scheduler } from "./scheduler/scheduler.js";
export { createBackend } from "./secrets/create-backend.js";
export { SecretResolver } from "./secrets/resolver.js";
export { VERSION } from "./version.js";

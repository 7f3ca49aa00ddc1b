import { auditModule } from "./audit/audit.module.js";
import { filesModule } from "./files/files.module.js";
import { dashboardModule } from "./dashboard/dashboard.module.js";
import type { AnyModule } from "./platform/module.js";
import { systemModule } from "./system/system.module.js";
import { translationModule } from "./translation/translation.module.js";
import { usersModule } from "./users/users.module.js";

/**
 * The service's domains, in start order (a module may use what an earlier one exports); they stop in
 * reverse. Adding a domain is a folder under server/ and one line here.
 */
export const MODULES: readonly AnyModule[] = [systemModule, translationModule, filesModule, usersModule, auditModule, dashboardModule];

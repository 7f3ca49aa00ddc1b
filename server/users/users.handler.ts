import { timestampFromMs, timestampNow } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { LoginSession as LoginSessionMessage, Preferences as PreferencesMessage, QuotaCounter as QuotaCounterMessage, QuotaLimits, User as UserMessage, UserService as UserServiceDesc } from "../../gen/persistence/v1/users_pb.js";
import { QuotaKind, UserStatus } from "../../gen/persistence/v1/users_pb.js";
import { invalidArgument } from "../core/errors.js";
import { clientAddressKey, principalKey } from "../rpc/context.js";
import { grants } from "../security/scopes.js";
import type { LoginSession } from "./users.sessions.js";
import type { Preferences, Quota, QuotaCounter, User, UsersService, UserStatus as Status } from "./users.service.js";

type Message<T> = Omit<T, "$typeName" | "$unknown">;

/** persistence.v1.UserService: maps the contract onto the users service. */
export function createUsersHandler(users: UsersService): ServiceImpl<typeof UserServiceDesc> {
  return {
    async createUser(req) {
      const user = await users.createUser({
        username: req.username,
        email: req.email,
        password: req.password,
        displayName: req.displayName,
        status: statusOf(req.status),
        limits: limitsOf(req.quotaLimits),
      });
      return { user: userMessage(user) };
    },
    async getUser(req) {
      return { user: userMessage(await users.getUser(req.userId)) };
    },
    async updateUser(req) {
      const user = await users.updateUser(req.userId, {
        username: req.username,
        email: req.email,
        displayName: req.displayName,
        password: req.password,
        status: statusOf(req.status),
        limits: limitsOf(req.quotaLimits),
      });
      return { user: userMessage(user) };
    },
    async deleteUser(req) {
      const { revokedSessions } = await users.deleteUser(req.userId);
      return { status: "deleted", userId: req.userId, revokedSessions };
    },
    async getPreferences(req) {
      return { preferences: preferencesMessage(await users.getPreferences(req.userId)) };
    },
    async updatePreferences(req) {
      const preferences = await users.updatePreferences(req.userId, {
        language: req.language,
        theme: req.theme,
        notifications: req.notifications,
        custom: req.custom,
        clear: req.clearFields,
      });
      return { preferences: preferencesMessage(preferences) };
    },
    async getQuota(req) {
      return quotaMessage(await users.getQuota(req.userId));
    },
    async consumeQuota(req) {
      const kind = req.kind === QuotaKind.TRANSLATIONS ? "translations" : req.kind === QuotaKind.STORAGE_BYTES ? "storage_bytes" : undefined;
      if (!kind) throw invalidArgument([{ field: "kind", description: "must be translations or storage_bytes" }]);
      const counter = await users.consumeQuota(req.userId, kind, Number(req.amount));
      return { userId: req.userId, kind: req.kind, quota: counterMessage(counter) };
    },
    async createSession(req, ctx) {
      const options = {
        ttlSeconds: req.ttlSeconds,
        idleTimeoutSeconds: req.idleTimeoutSeconds,
        clientAddress: req.clientAddress || (ctx.values.get(clientAddressKey) ?? ""),
        userAgent: [...req.userAgent].slice(0, 512).join(""),
      };
      if (req.userId !== "") {
        if (req.username !== "" || req.email !== "" || req.password !== "") {
          throw invalidArgument([{ field: "user_id", description: "give a user_id, or a username or email with a password, not both" }]);
        }
        // Logging in without a password is for callers trusted with every user.
        const principal = ctx.values.get(principalKey);
        if (principal && !grants(principal.scopes, "users:admin")) {
          throw new ConnectError(`API key "${principal.name}" lacks the scope users:admin, which a login by user_id needs`, Code.PermissionDenied);
        }
        const { token, session, user } = await users.login({ by: "user_id", userId: req.userId }, options);
        return { sessionToken: token, expiresAt: timestampFromMs(session.expiresAt), session: sessionMessage(session), user: userMessage(user) };
      }
      const { token, session, user } = await users.login({ by: "password", username: req.username, email: req.email, password: req.password }, options);
      return { sessionToken: token, expiresAt: timestampFromMs(session.expiresAt), session: sessionMessage(session), user: userMessage(user) };
    },
    async validateSession(req) {
      const { session, user } = await users.validateSession(req.sessionToken);
      return { valid: true, session: sessionMessage(session), user: userMessage(user) };
    },
    async deleteSession(req) {
      return { status: (await users.logout(req.sessionToken)) ? "deleted" : "not_found" };
    },
    async listUserSessions(req) {
      const sessions = await users.listSessions(req.userId);
      return { userId: req.userId, count: sessions.length, sessions: sessions.map(sessionMessage) };
    },
    async revokeUserSessions(req) {
      if (req.sessionId !== "" && req.exceptSessionId !== "") {
        throw invalidArgument([{ field: "except_session_id", description: "give session_id or except_session_id, not both" }]);
      }
      const revokedSessions = await users.revokeSessions(req.userId, {
        ...(req.sessionId !== "" ? { only: req.sessionId } : {}),
        ...(req.exceptSessionId !== "" ? { except: req.exceptSessionId } : {}),
      });
      return { userId: req.userId, revokedSessions };
    },
    async exportUserData(req) {
      const data = await users.exportUser(req.userId);
      return {
        exportedAt: timestampNow(),
        user: userMessage(data.user),
        preferences: preferencesMessage(data.preferences),
        quota: quotaMessage(data.quota),
        sessions: data.sessions.map(sessionMessage),
      };
    },
  };
}

function statusOf(status: UserStatus): Status | undefined {
  if (status === UserStatus.ACTIVE) return "active";
  if (status === UserStatus.DISABLED) return "disabled";
  return undefined;
}

function limitsOf(limits: QuotaLimits | undefined) {
  return {
    translations: limits?.translations === undefined ? undefined : Number(limits.translations),
    storageBytes: limits?.storageBytes === undefined ? undefined : Number(limits.storageBytes),
  };
}

function userMessage(user: User): Message<UserMessage> {
  return {
    userId: user.userId,
    username: user.username,
    email: user.email,
    displayName: user.displayName,
    status: user.status === "disabled" ? UserStatus.DISABLED : UserStatus.ACTIVE,
    createdAt: timestampFromMs(user.createdAt),
    updatedAt: timestampFromMs(user.updatedAt),
  };
}

function preferencesMessage(p: Preferences): Message<PreferencesMessage> {
  return {
    userId: p.userId,
    language: p.language,
    theme: p.theme,
    notifications: p.notifications as PreferencesMessage["notifications"],
    custom: p.custom as PreferencesMessage["custom"],
    ...(p.updatedAt !== undefined ? { updatedAt: timestampFromMs(p.updatedAt) } : {}),
  };
}

function counterMessage(c: QuotaCounter): Message<QuotaCounterMessage> {
  return {
    used: BigInt(c.used),
    limit: BigInt(c.limit),
    remaining: BigInt(c.remaining),
    ...(c.resetsAt !== undefined ? { resetsAt: timestampFromMs(c.resetsAt) } : {}),
  };
}

function quotaMessage(q: Quota) {
  return { userId: q.userId, translations: counterMessage(q.translations), storageBytes: counterMessage(q.storageBytes) };
}

function sessionMessage(s: LoginSession): Message<LoginSessionMessage> {
  return {
    sessionId: s.sessionId,
    userId: s.userId,
    createdAt: timestampFromMs(s.createdAt),
    expiresAt: timestampFromMs(s.expiresAt),
    idleTimeoutSeconds: Math.round(s.idleTimeoutMs / 1000),
    clientAddress: s.clientAddress,
    userAgent: s.userAgent,
  };
}

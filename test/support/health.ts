/** What `GET /health` answered. */
export interface HealthReply {
  readonly status: number;
  readonly body: { status: string; backends: Record<string, string>; backends_age_ms: number };
}

export async function getHealth(url: string): Promise<HealthReply> {
  const res = await fetch(`${url}/health`);
  return { status: res.status, body: (await res.json()) as HealthReply["body"] };
}

/** Polls `GET /health` until its answer satisfies `wanted`, as a load balancer would (for 30 s at most). */
export async function healthUntil(url: string, wanted: (reply: HealthReply) => boolean): Promise<HealthReply> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const reply = await getHealth(url);
    if (wanted(reply)) return reply;
    if (Date.now() > deadline) throw new Error(`/health still answers ${JSON.stringify(reply)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

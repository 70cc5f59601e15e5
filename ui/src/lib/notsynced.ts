// Why a folder's file is not synced here, worded from its code (see WHY_CODES); the core's
// English text when this UI does not know the code (a newer core).
import type { NotSynced } from "./bindings";
import { has, t } from "./i18n.svelte";

export function whyText(n: Pick<NotSynced, "code" | "params" | "reason">): string {
  const params = n.params ?? {};
  const one = (code: string | undefined) => (code && has(`folders:why.${code}`) ? t(`folders:why.${code}`, params) : null);
  if (n.code === "only_here") {
    const inner = one(params.why);
    return inner ? `${inner} ${t("folders:why.only_here")}` : n.reason;
  }
  return one(n.code) ?? n.reason;
}

import { DEFAULT_UPSTREAM, PATH_RULES, PRIVATE_PATHS } from '@scs/local-stack/gateway/app';

/**
 * The ALB's HTTPS listener and the local gateway must route alike (the product contract's
 * gateway rules). This compares the listener rules Terraform applied with the gateway's
 * `PATH_RULES` and `DEFAULT_UPSTREAM`: same patterns, same order, same service; and the paths
 * the gateway never forwards (`PRIVATE_PATHS`, /metrics) are answered 404 by the listener,
 * before any forward.
 */
interface StateResource {
  address: string;
  type: string;
  values: Record<string, unknown>;
}

interface StateModule {
  resources?: StateResource[];
  child_modules?: StateModule[];
}

/** Every managed resource of a `terraform show -json` state, child modules included. */
export function stateResources(module: StateModule | undefined): StateResource[] {
  if (!module) return [];
  return [...(module.resources ?? []), ...(module.child_modules ?? []).flatMap(stateResources)];
}

type Action = { type: string; target_group_arn?: string; fixed_response?: { status_code: string }[] };

export interface AppliedRule {
  priority: number;
  patterns: string[];
  /** The service a forward goes to (from the target group's name), or `fixed <status>`. */
  destination: string;
}

/** The applied HTTPS listener rules in priority order, and where the default action goes. */
export function appliedListenerRules(root: StateModule | undefined, namePrefix: string): { rules: AppliedRule[]; defaultDestination: string } {
  const resources = stateResources(root);
  const groups = new Map(
    resources.filter((r) => r.type === 'aws_lb_target_group').map((r) => [String(r.values.arn), String(r.values.name).slice(namePrefix.length + 1)]),
  );
  const destination = (actions: Action[]): string => {
    const action = actions[0];
    if (!action) return 'none';
    if (action.type === 'forward') return groups.get(action.target_group_arn ?? '') ?? `unknown target group ${action.target_group_arn}`;
    if (action.type === 'fixed-response') return `fixed ${action.fixed_response?.[0]?.status_code}`;
    return action.type;
  };
  const https = resources.find((r) => r.type === 'aws_lb_listener' && r.values.protocol === 'HTTPS');
  const rules = resources
    .filter((r) => r.type === 'aws_lb_listener_rule' && r.values.listener_arn === https?.values.arn)
    .map((r) => ({
      priority: Number(r.values.priority),
      patterns: ((r.values.condition as { path_pattern?: { values: string[] }[] }[]) ?? []).flatMap((c) => (c.path_pattern ?? []).flatMap((p) => p.values)),
      destination: destination((r.values.action as Action[]) ?? []),
    }))
    .sort((a, b) => a.priority - b.priority);
  return { rules, defaultDestination: https ? destination((https.values.default_action as Action[]) ?? []) : 'no HTTPS listener' };
}

/** Differences between the applied listener and the gateway's table; empty when they agree. */
export function compareWithGateway(applied: { rules: AppliedRule[]; defaultDestination: string }): string[] {
  const problems: string[] = [];
  const forwarding = applied.rules.filter((r) => !r.destination.startsWith('fixed '));
  const expected = PATH_RULES.map((r) => ({ patterns: [r.pattern], destination: r.upstream }));
  const show = (rules: { patterns: string[]; destination: string }[]) => rules.map((r) => `${r.patterns.join(',')} -> ${r.destination}`).join('; ');
  if (show(forwarding) !== show(expected)) problems.push(`forwarding rules are [${show(forwarding)}], the gateway's are [${show(expected)}]`);
  if (applied.defaultDestination !== DEFAULT_UPSTREAM) {
    problems.push(`the default action goes to ${applied.defaultDestination}, the gateway's to ${DEFAULT_UPSTREAM}`);
  }
  // A rule that answers by itself must come before every forward, so nothing it blocks is forwarded.
  const firstForward = applied.rules.findIndex((r) => !r.destination.startsWith('fixed '));
  const lateFixed = applied.rules.filter((r, i) => r.destination.startsWith('fixed ') && firstForward !== -1 && i > firstForward);
  if (lateFixed.length > 0) problems.push(`rules answering by themselves come after a forward: ${show(lateFixed)}`);
  const blocked = applied.rules.filter((r) => r.destination === 'fixed 404').flatMap((r) => r.patterns);
  if ([...blocked].sort().join(',') !== [...PRIVATE_PATHS].sort().join(',')) {
    problems.push(`the load balancer answers 404 for [${blocked.join(', ')}], the gateway for its PRIVATE_PATHS [${PRIVATE_PATHS.join(', ')}]`);
  }
  return problems;
}

// What KWOK's fake kubelets do with nodes and pods, as KWOK stages: they follow KWOK's own "fast" node and pod
// stages, plus two chosen by the image tag, so that a bad release can be tried without a real one:
//   …-never-ready   the container runs but never passes readiness
//   …-crashloop     ready at first, then (after CRASH_AFTER_MS) restarted and in CrashLoopBackOff
export const NEVER_READY = '-never-ready';
export const CRASHLOOP = '-crashloop';
// Long enough for the rollout to finish first, so that the crash is for the watch to catch.
const CRASH_AFTER_MS = 15_000;

const matchesTag = (suffix: string) => `'.spec.containers.[] | .image | endswith("${suffix}")'`;

/** A pending pod taken to Running: its containers ready, or (image tag NEVER_READY) running but never ready. */
const runningPodStage = (name: string, ready: boolean) => `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: { name: ${name} }
spec:
  resourceRef: { apiGroup: v1, kind: Pod }
  selector:
    matchExpressions:
    - { key: '.metadata.deletionTimestamp', operator: DoesNotExist }
    - { key: '.status.phase', operator: In, values: [Pending] }
    - { key: ${matchesTag(NEVER_READY)}, operator: ${ready ? 'NotIn' : 'In'}, values: ['true'] }
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - { lastTransitionTime: {{ $now | Quote }}, status: "True", type: Initialized }
      - { lastTransitionTime: {{ $now | Quote }}, ${ready ? 'status: "True", type: Ready }' : 'status: "False", type: Ready, reason: ContainersNotReady }'}
      - { lastTransitionTime: {{ $now | Quote }}, ${ready ? 'status: "True", type: ContainersReady }' : 'status: "False", type: ContainersReady, reason: ContainersNotReady }'}
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: ${ready}
        restartCount: 0
        state: { running: { startedAt: {{ $now | Quote }} } }
      {{ end }}
      hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
      podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
      phase: Running
      startTime: {{ $now | Quote }}`;

/** KWOK's stages: nodes made ready, pods taken to Running (or not ready, or crash-looping), deleted pods removed. */
export const KWOK_STAGES = `
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: { name: node-initialize }
spec:
  resourceRef: { apiGroup: v1, kind: Node }
  selector:
    matchExpressions:
    - { key: '.status.conditions.[] | select( .type == "Ready" ) | .status', operator: NotIn, values: ['True'] }
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      {{ range NodeConditions }}
      - lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $now | Quote }}
        message: {{ .message | Quote }}
        reason: {{ .reason | Quote }}
        status: {{ .status | Quote }}
        type: {{ .type | Quote }}
      {{ end }}
      addresses:
      - { address: {{ NodeIP | Quote }}, type: InternalIP }
      - { address: {{ NodeName | Quote }}, type: Hostname }
      allocatable: { cpu: 1k, memory: 1Ti, pods: 1M }
      capacity: { cpu: 1k, memory: 1Ti, pods: 1M }
      nodeInfo:
        architecture: amd64
        kubeletVersion: {{ printf "kwok-%s" Version | Quote }}
        operatingSystem: linux
      phase: Running
---
${runningPodStage('pod-ready', true)}
---
${runningPodStage('pod-never-ready', false)}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: { name: pod-crashloop }
spec:
  resourceRef: { apiGroup: v1, kind: Pod }
  selector:
    matchExpressions:
    - { key: '.metadata.deletionTimestamp', operator: DoesNotExist }
    - { key: '.status.phase', operator: In, values: [Running] }
    - { key: '.status.conditions.[] | select( .type == "Ready" ) | .status', operator: In, values: ['True'] }
    - { key: ${matchesTag(CRASHLOOP)}, operator: In, values: ['true'] }
  delay: { durationMilliseconds: ${CRASH_AFTER_MS} }
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - { lastTransitionTime: {{ $now | Quote }}, status: "True", type: Initialized }
      - { lastTransitionTime: {{ $now | Quote }}, status: "False", type: Ready, reason: ContainersNotReady }
      - { lastTransitionTime: {{ $now | Quote }}, status: "False", type: ContainersReady, reason: ContainersNotReady }
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        restartCount: 1
        lastState: { terminated: { exitCode: 1, reason: Error, startedAt: {{ $now | Quote }}, finishedAt: {{ $now | Quote }} } }
        state: { waiting: { reason: CrashLoopBackOff, message: "back-off 10s restarting failed container" } }
      {{ end }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: { name: pod-delete }
spec:
  resourceRef: { apiGroup: v1, kind: Pod }
  selector:
    matchExpressions:
    - { key: '.metadata.deletionTimestamp', operator: Exists }
  next:
    delete: true
`;

package integration

// Manifests use placeholders replaced by environment.apply: @NS@ (namespace),
// @CLASS@ (GatewayClass name), @CONTROLLER@ (controllerName), @NAME@,
// @REPLICAS@, @HOST@, @BACKEND@.

const gatewayClassYAML = `
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: @CLASS@}
spec: {controllerName: @CONTROLLER@}
`

// echoYAML is a Deployment of echo-basic and its Service (port 8080).
const echoYAML = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: @NAME@, namespace: @NS@}
spec:
  replicas: @REPLICAS@
  selector: {matchLabels: {app: @NAME@}}
  template:
    metadata: {labels: {app: @NAME@}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: echo
        image: registry.k8s.io/gateway-api/echo-basic:v1.5.1
        ports: [{name: http, containerPort: 3000}]
        env:
        - name: POD_NAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        - name: NAMESPACE
          valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
        readinessProbe:
          httpGet: {path: /, port: http}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: @NAME@, namespace: @NS@}
spec:
  selector: {app: @NAME@}
  ports: [{name: http, port: 8080, targetPort: 3000}]
`

// httpGatewayYAML is a Gateway with one HTTP listener on port 80.
const httpGatewayYAML = `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: @NS@}
spec:
  gatewayClassName: @CLASS@
  listeners:
  - {name: http, protocol: HTTP, port: 80, allowedRoutes: {namespaces: {from: Same}}}
`

// routeYAML sends @HOST@/ to Service @BACKEND@:8080.
const routeYAML = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: @NAME@, namespace: @NS@}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  hostnames: [@HOST@]
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: @BACKEND@, port: 8080}]
`

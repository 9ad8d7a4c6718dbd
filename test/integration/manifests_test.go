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

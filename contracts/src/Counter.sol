// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Counter
/// @notice A small contract for exercising contract_call transactions:
/// a state change with arguments of several ABI types, a payable path, and a
/// call that always reverts.
contract Counter {
    uint256 public count;
    string public note;
    mapping(address => uint256) public deposited;

    event Incremented(address indexed by, uint256 amount, string note, uint256 value);

    function increment(uint256 amount, string calldata newNote) external payable {
        count += amount;
        note = newNote;
        deposited[msg.sender] += msg.value;
        emit Incremented(msg.sender, amount, newNote, msg.value);
    }

    function setFlags(address who, bool flag, bytes32 tag, uint8[] calldata levels) external {
        require(who != address(0) || !flag, "Counter: zero address flagged");
        count += levels.length + (flag ? 1 : 0) + uint256(tag) % 2;
    }

    function alwaysReverts() external pure {
        revert("Counter: always reverts");
    }
}
